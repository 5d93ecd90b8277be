"""Media: PCM frames, prompt player, recorder, mixer and RTP relay (see docs/media-mixing.md)."""
