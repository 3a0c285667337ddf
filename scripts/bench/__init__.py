"""End-to-end benchmark of refundwatch on PostgreSQL, beside a bare baseline (`make bench`).

    .venv/bin/python scripts/bench [--quick] [--app-dir PATH] [--output FILE] …
    .venv/bin/python scripts/bench --with imports,connector     # the opt-in phase groups too
    .venv/bin/python scripts/bench --all --import-rows 1000000  # everything, the docs' sizes
    .venv/bin/python scripts/bench --compare before.json after.json

What a run does (docs/performance.md explains the method and shows the figures):

1. Creates fresh PostgreSQL databases (one for refundwatch, one for the bare
   baseline of scripts/bench_baseline.py), migrates, starts refundwatch without
   its worker and the baseline (uvicorn) on free loopback ports, waits for
   /readyz. Servers are killed and databases dropped at the end, also on
   failure or Ctrl-C. ``--app-dir PATH`` measures another source tree (a git
   worktree of another commit) with the same venv.
2. Generates a realistic event stream in-process (``bench.stream``).
3. Runs the phases of ``bench.cli.PHASES`` in order: batch ingest ev/s (500
   events/request, 4 and 8 clients) and single-event ingest ev/s (32 clients,
   ~10 s), each interleaved with the same runs against the bare baseline;
   GET /v1/stores/{id}/metrics latency p50/p99 (sequential and 8 clients) with
   ~10k events stored and again with ``--events-large`` (1M) stored; py-spy
   profiles of the server under batch, single-event and read load. Each figure
   is the median of ``--runs`` (3) runs.
4. Prints the machine and a Markdown table; writes bench-results/latest.json.

Phase groups
------------
Every phase belongs to a group (``Phase.group``; "core" phases, the warm-up,
the sample, the load to ``--events-large``, the calibration and the checks,
always run). ``--with G,…`` adds groups, ``--skip G,…`` leaves them out,
``--all`` runs every one. The default run (``make bench``) is ``ingest``,
``profile``, ``reads``, ``insights`` and ``console``, with bounded sizes;
``imports`` and ``connector`` are opt-in (each adds 5–20 minutes here).

- ``ingest``: batch and single-event ingest beside the baseline (above).
- ``profile``: the py-spy profiles (``--no-profile`` also turns them off).
- ``reads``: the metrics reads at ~10k and ``--events-large`` events, and the
  big store (``phases/insights.py``): ``--big-store-orders`` (100,000; quick
  20,000; 0 skips) orders of one store over its 30-day window, with SKUs,
  couriers, shipping events and quality refunds, imported with the tree's
  ``refundwatch import`` before the load to ``--events-large`` (which then
  fills the database up to that total); its ``/metrics`` read.
- ``insights``: sequential p50/p99 on the big store of ``/breakdown?by=`` each
  split, ``/breakdown?by=…&product_id=`` (10 top products), ``/products/{pid}/skus``,
  ``/products`` and ``/v1/risk``; ``--insight-reads`` (500; quick 200) per run.
- ``console``: the database brought to ``--console-stores`` (200) stores with
  ``--console-events`` (100,000) events of new stores, a sign-in through
  ``POST /console/login``, then ``GET /console`` and ``GET /console/stores/{id}``
  sequentially, ``--console-reads`` (200; quick 60) per run; skipped, saying
  so, when the tree has no console.
- ``imports`` (``phases/imports.py``): ``--import-events`` (200,000; quick
  50,000; 0 skips) events of a stream of their own, imported with the tree's
  CLI into a fresh database and posted over HTTP (500/request, 4 clients) to a
  server on another, ``--runs`` times, alternating which goes first, beside a
  bare parse + COPY import and the bare HTTP baseline of the same events; the
  figures of both databases compared (``/metrics`` and ``/products`` of every
  store). Then a PDD order export of ``--import-rows`` rows (200,000; quick
  50,000; 0 skips; the docs use 1,000,000) into a fresh database: rows/s and
  the importer's peak RSS (``wait4``). ``--import-max-seconds`` (900) cuts any
  one import.
- ``connector`` (``phases/connector.py``): the loopback fake gateway in the
  bench's process with ``--connector-stores`` (5) × ``--connector-orders-per-day``
  (2,000) × ``--connector-days`` (30; quick 3), one app per store; for each of
  ``--connector-rates`` (``published``,``unthrottled``) a fresh database, a
  server and a ``refundwatch worker`` of the tree, connections created with
  ``POST /v1/connections``, timed until all are ``live`` (calls/s, CPU of the
  worker, the server, PostgreSQL; the rate's lower bound), then (first rate
  only) the steady state for ``--connector-steady-seconds`` (180; quick 70; 0
  skips) at ``--connector-interval`` (60, the app's default). ``--connector-profile``
  runs py-spy on the worker for the first ``--profile-seconds`` of each
  backfill; ``--connector-max-seconds`` (900) cuts a backfill.

PostgreSQL's cores count only the backends of this run's databases and the
server's shared processes: other people's jobs use the same server, and their
backends go to "other jobs' cores" (``cpu.OUR_DATABASES``).

Request bodies are pre-serialized with orjson before each run and sent as raw
bytes over one keep-alive HTTP/1.1 connection per concurrent client
(``bench.client``), so the client spends little CPU; client, server and
PostgreSQL CPU are reported per run (``bench.cpu``; the three share the cores).

The modules, in the order a run uses them:

    cli.py        flags, PHASES (the run, in order), run_bench, main
    machine.py    machine facts and the measured code's fingerprint
    stream.py     the event stream and the request bodies
    context.py    Bench (what a phase gets) and open_bench (servers and databases)
    server.py     the server processes: refundwatch from a tree, the baseline
    database.py   fresh databases, counts, settling after a load
    load.py       the load drivers and what one run measured
    client.py     the raw keep-alive HTTP/1.1 client
    cpu.py        CPU accounting and calibration
    child.py      a timed child process (an import): its own CPU and peak RSS (wait4)
    phases/       ingest.py, reads.py, profile.py, checks.py, imports.py, connector.py,
                  insights.py, console.py
    report.py     latest.json and the Markdown tables
    compare.py    --compare: before/after tables from result files

Adding a phase
--------------
A phase is a subclass of ``bench.phases.Phase`` with one coroutine,
``async run(bench)``, and an instance of it in ``PHASES`` where it should run.
It receives a ``bench.context.Bench``:

- ``bench.args``: the flags; add the phase's own in ``cli.parse_args``.
- ``bench.stream``: ``take(n)`` events (in arrival order), ``give_back(taken,
  sent)`` what a time-bounded run did not send, ``sample``, ``stores``. Declare
  what you take so the stream is generated big enough: ``events_needed(args)``
  for events stored for good, ``events_reserved(args)`` for a ceiling that a
  time-bounded run gives back.
- ``await bench.ingest(label, events, clients, target=None, size=500,
  duration=None, max_seconds=None)`` posts to refundwatch (or to
  ``bench.baseline`` when given) and returns an ``IngestRun`` (ev/s, latencies,
  statuses, the cores each party used, server CPU per event); events
  refundwatch accepts are counted in ``bench.stored``.
- ``await bench.read(label, paths, clients, n=None)`` GETs refundwatch and
  returns a ``ReadRun`` (p50/p99, req/s, cores).
- ``bench.app`` / ``bench.baseline``: ``Target`` (``.base`` URL, ``.pid``,
  ``.db_url``); ``bench.tree.cli("import", FILE)`` is the argv of a
  ``refundwatch`` command of the tree under test, to run with ``bench.app_env``
  (its database and admin key); ``await bench.databases.create("rw_bench_x")``
  gives another fresh database, dropped with the others; ``bench.headers``
  carries the admin key; ``bench.artifact(name)`` is a path beside the JSON.
- Helpers for phases that need more than the main server:
  ``await bench.fresh_database("rw_bench_x")`` (created and migrated by the
  tree; ``bench.drop_database(url)`` drops it early), ``async with
  bench.extra_app(name, url) as target`` (another server of the tree on that
  database, stopped at the end of the block), ``bench.worker(name, url, **env)``
  (a ``refundwatch worker`` of the tree, a ``Server`` to start and stop),
  ``await bench.run_cli(label, *args, env=…, limit_s=…)`` (a command of the
  tree timed whole: a ``child.ChildRun`` with its CPU, peak RSS and
  PostgreSQL's cores), ``bench.env_for(url, **extra)``, and ``bench.notes``
  for what one phase leaves to later ones (the big store's products, the
  console's cookie). A ``ReadLatency`` can be sequential only
  (``concurrent=False``), take its count from another flag (``reads_flag``)
  and send other headers (``headers``).
- Results: write a JSON-able dict to ``bench.result["<your key>"]`` (medians
  with every run kept beside them: ``phases.ingest.summarize`` does it for
  ingest runs). ``report.markdown`` renders a row for every ``reads_*`` entry;
  for anything else add its rows there.

For example, a read phase for a new endpoint is one line in ``PHASES``:

    ReadLatency("reads_skus_large", "skus", "large",
                lambda b: [f"/v1/stores/{s}/skus" for s in b.stream.stores]),

and give it a ``group`` (the ``ReadLatency`` argument, or a class attribute)
so ``--with`` / ``--skip`` reach it; ``phases/imports.py`` is the example of
a phase with databases and servers of its own.
"""
