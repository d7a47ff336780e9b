"""Run the Plex emulator by hand: `python -m emulators.plex --port 32400 --token T --seed 100`.

Prints the URL on stdout and serves until Ctrl-C. `--seed N` creates N movie items named
`<section-path>/scene_00001.mp4`, ... with a few genres and actors, so plexapi has something to list.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import PlexEmulator

_GENRES = ['Drama', 'Comedy', 'Outdoor', 'Interview', 'Behind the Scenes']
_ACTORS = ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Hedy Lamarr', 'Katherine Johnson']


def seed_items(section_path: str, count: int):
    """Deterministic demo items: file, size, title and a few tags."""
    base = section_path.rstrip('/\\') or '/'
    sep = '\\' if '\\' in base and '/' not in base else '/'
    for i in range(1, count + 1):
        yield {
            'file': f'{base}{sep}scene_{i:05d}.mp4',
            'size': 1_000_000 + i,
            'genres': [_GENRES[i % len(_GENRES)], _GENRES[(i * 3) % len(_GENRES)]],
            'actors': [_ACTORS[i % len(_ACTORS)]],
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m emulators.plex', description='Serve an emulated Plex Media Server.'
    )
    parser.add_argument('--port', type=int, default=32400, help='port on 127.0.0.1 (0 = any free)')
    parser.add_argument('--token', required=True, help='the X-Plex-Token to accept')
    parser.add_argument('--seed', type=int, default=0, help='number of movie items to create')
    parser.add_argument('--section-title', default='Movies')
    parser.add_argument('--section-path', default='/media/movies')
    parser.add_argument('--quiet', action='store_true', help='no notes on stderr')
    args = parser.parse_args(argv)

    plex = PlexEmulator(token=args.token, port=args.port, quiet=args.quiet)
    sid = plex.add_section(args.section_title, locations=[args.section_path])
    if args.seed:
        plex.bulk_add(sid, seed_items(args.section_path, args.seed))
    plex.start()
    print(plex.url, flush=True)
    print(
        f'section {sid} "{args.section_title}" with {args.seed} items; Ctrl-C to stop',
        file=sys.stderr,
        flush=True,
    )

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if hasattr(signal, 'SIGTERM'):
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        plex.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
