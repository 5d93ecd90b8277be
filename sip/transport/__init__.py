"""asyncio transports for SIP (UDP, TCP; TLS designed in)."""
