"""Developer commands that are not tests: `make package` (tools/package.py) and `make demo`
(tools/demo.py). Not part of the plugin."""
