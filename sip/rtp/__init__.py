"""RTP/RTCP: packets, jitter buffer, sessions (RFC 3550, RFC 4733)."""
