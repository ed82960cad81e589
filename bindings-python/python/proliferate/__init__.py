"""Proliferate: run coding agents in sandboxes and stream their work live.

```python
import asyncio, proliferate

async def main():
    client = proliferate.Client("http://127.0.0.1:8787", token="...")
    session = await client.create_session()
    async with client.connect(session.id) as connection:
        await connection.send_prompt("Say hello")
        async for envelope in connection:
            if isinstance(envelope.event, proliferate.types.TextDelta):
                print(envelope.event.delta, end="")
            if envelope.event.type == "turn_completed":
                break

asyncio.run(main())
```
"""

import atexit

from . import _native, types
from .client import (
    Client, Connection, Reconnecting, ServiceCredentials, Subscription, TokenSource, Update,
)
from .errors import ProliferateError
from .protocol import TranscriptReducer, decode_as
from .sync import SyncClient, SyncConnection

__all__ = [
    "Client", "Connection", "ProliferateError", "Reconnecting", "ServiceCredentials",
    "Subscription", "SyncClient", "SyncConnection", "TokenSource", "TranscriptReducer", "Update", "decode_as", "types",
]

# Runtime threads must not deliver results into a finalizing interpreter.
atexit.register(_native.shutdown)
