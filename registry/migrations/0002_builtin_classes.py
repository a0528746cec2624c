"""Install the built-in artifact classes (administrators can add more without code)."""

from django.db import migrations


def install(apps, schema_editor):
    from registry.choices import BUILTIN_CLASSES

    artifact_class = apps.get_model("registry", "ArtifactClass")
    for slug, name, kind, pointer, description in BUILTIN_CLASSES:
        artifact_class.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "content_kind": kind,
                "interface_pointer": pointer,
                "description": description,
                "builtin": True,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
