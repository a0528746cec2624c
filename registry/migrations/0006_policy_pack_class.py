"""Install the built-in classes added since 0002 (the policy pack)."""

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
    dependencies = [("registry", "0005_versionstate_artifact_active_version")]
    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
