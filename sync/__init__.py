"""Durable local state of PlexSync: the job queue, the dead-letter queue, small state files, locks.

Knows nothing of Plex or Stash. The hook imports only this package and the standard library.
"""
