"""Serve the Stash emulator until Ctrl-C.

python -m emulators.stash --port 9999 --plugin-dir . --seed 100
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from .server import StashEmulator


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.stash", description=__doc__.strip().splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=9999, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument(
        "--plugin-dir", default=None, help="folder holding the plugin's .yml (e.g. the repo root)"
    )
    parser.add_argument("--plugin-id", default=None, help="plugin id when the folder holds several manifests")
    parser.add_argument("--api-key", default=None, help="accept this ApiKey header")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="add N generated scenes")
    parser.add_argument("--path-prefix", default="/data/videos", help="folder of the generated scenes")
    parser.add_argument("--python", default=sys.executable, help="python used for python/python3 in exec")
    args = parser.parse_args(argv)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)  # also when started in the background with SIGINT ignored
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, interrupt)
    stash = StashEmulator(
        plugin_dir=args.plugin_dir,
        api_key=args.api_key,
        port=args.port,
        python=args.python,
        plugin_id=args.plugin_id,
    )
    stash.start()
    if args.seed:
        stash.seed_scenes(args.seed, path_prefix=args.path_prefix)
    print("Stash emulator listening on %s (GraphQL: %s)" % (stash.url, stash.graphql_url))
    if stash.plugin_id:
        print(
            "plugin %r from %s: tasks %s" % (stash.plugin_id, stash.plugin_dir, ", ".join(stash.runner.tasks))
        )
    print("scenes: %d" % len(stash.data.scenes))
    print("server_connection: %s" % json.dumps(stash.server_connection()))
    print("Ctrl-C to stop")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stash.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
