from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Visit",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("visited_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "db_table": "visits",
            },
        ),
    ]
