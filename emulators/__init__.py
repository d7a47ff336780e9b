"""The Stash and Plex emulators, Stash's plugin runner and the `World` wiring them to an installed
plugin: what the integration and end-to-end tests, `make demo` and `make bench` run against.

Not part of the plugin (`make package` ships only the runtime packages). The emulators' own tests
are in tests/emulators_tests/; README.md names the real source each behaviour follows.
"""
