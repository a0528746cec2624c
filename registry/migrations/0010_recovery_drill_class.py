"""Install the built-in classes added since 0006 (the recovery drill)."""

from django.db import migrations


def install(apps, schema_editor):  # type: ignore[no-untyped-def]
    from registry.choices import BUILTIN_CLASSES

    ArtifactClass = apps.get_model("registry", "ArtifactClass")
    for slug, name, kind, pointer, description in BUILTIN_CLASSES:
        ArtifactClass.objects.get_or_create(
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
    dependencies = [("registry", "0009_retirement_immutable")]
    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
