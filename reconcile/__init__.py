"""Finding gaps between Stash and Plex (changes a hook never saw) and queueing them."""
