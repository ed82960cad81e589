"""Streams one agent turn to the terminal.

    pip install ./bindings-python
    PROLIFERATE_URL=http://127.0.0.1:8787 PROLIFERATE_TOKEN=... python examples/python/stream_turn.py "[[bash:ls]]"

`scripts/run` starts a server and prints a token.
"""

import asyncio
import os
import sys

import proliferate
from proliferate import types


async def main(prompt: str) -> None:
    client = proliferate.Client(
        os.environ.get("PROLIFERATE_URL", "http://127.0.0.1:8787"),
        token=os.environ["PROLIFERATE_TOKEN"],
        source="cli",
    )
    session = await client.create_session(title="python example")
    print(f"session {session.id}")
    async with client.connect(session.id) as connection:
        admission = await connection.send_prompt(prompt)
        async for envelope in connection:
            match envelope.event:
                case types.TextDelta(delta=delta):
                    print(delta, end="", flush=True)
                case types.ToolStarted(tool=tool):
                    print(f"\n[tool {tool}]", flush=True)
                case types.ToolCompleted(output=output):
                    print(output.rstrip())
                case types.PermissionRequested(permission_id=permission_id, permission=permission):
                    print(f"\n[permission {permission}: allowing once]")
                    await connection.reply_permission(permission_id, "once")
                case types.AgentError(message=message):
                    print(f"\n[agent error: {message}]")
                case types.TurnCompleted(prompt_id=admission.prompt_id):
                    print()
                    break
    await client.delete_session(session.id)


if __name__ == "__main__":
    try:
        asyncio.run(main(" ".join(sys.argv[1:]) or "Say hello"))
    except proliferate.ProliferateError as error:
        sys.exit(f"{error.code}: {error}")
