"""End-to-end benchmark of refundwatch on PostgreSQL, beside a bare baseline (`make bench`).

    .venv/bin/python scripts/bench [--quick] [--app-dir PATH] [--output FILE] …
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
    phases/       ingest.py, reads.py, profile.py, checks.py
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
- Results: write a JSON-able dict to ``bench.result["<your key>"]`` (medians
  with every run kept beside them: ``phases.ingest.summarize`` does it for
  ingest runs). ``report.markdown`` renders a row for every ``reads_*`` entry;
  for anything else add its rows there.

For example, a read phase for a new endpoint is one line in ``PHASES``:

    ReadLatency("reads_skus_large", "skus", "large",
                lambda b: [f"/v1/stores/{s}/skus" for s in b.stream.stores]),

and an import phase would take ``events_needed`` events, write them to
``bench.artifact("import.jsonl")``, time ``bench.tree.cli("import", …)`` on a
database of its own, post the same events over HTTP with ``bench.ingest`` to
another, and record both under ``bench.result["import"]``.
"""
