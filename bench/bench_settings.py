"""Settings for benchmarks only: the project's settings with ``bench_urls`` as the URLconf.

Used by ``bench/rollouts_bench.py`` (gunicorn is started with ``--pythonpath bench`` and
``DJANGO_SETTINGS_MODULE=bench_settings``), never by the product.
"""

from governance.settings import *  # noqa: F403

ROOT_URLCONF = "bench_urls"
