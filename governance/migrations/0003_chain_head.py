"""Create the single chain-head row that every append locks."""

from django.db import migrations


def create_head(apps, schema_editor):
    head_model = apps.get_model("governance", "EventChainHead")
    head_model.objects.get_or_create(pk=1, defaults={"seq": 0, "entry_hash": "0" * 64})


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0002_event_log"),
    ]

    operations = [migrations.RunPython(create_head, migrations.RunPython.noop)]
