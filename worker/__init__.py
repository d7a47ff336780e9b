"""Getting queued changes into Plex: the drain loop, circuit breaker, health probe, matcher,
Plex writer, rate limiting, and the tasks that operate them."""
