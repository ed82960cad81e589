"""Errors carry the protocol's codes, one exception class per code, and lose nothing."""

from __future__ import annotations

import asyncio

import pytest

import proliferate
from proliferate import errors
from proliferate import types as wire


async def test_a_bad_token_is_unauthenticated(server) -> None:
    client = proliferate.Client(server.url, token="not-a-token")
    with pytest.raises(errors.UnauthenticatedError) as raised:
        await client.list_sessions()
    assert raised.value.code == "unauthenticated" and raised.value.status == 401
    assert isinstance(raised.value, proliferate.ProliferateError)


async def test_another_organisations_token_cannot_see_the_session(server, client) -> None:
    session = await client.create_session(title="private")
    stranger = proliferate.Client(server.url, token=server.token("eve", "other"))
    with pytest.raises(errors.NotFoundError) as raised:
        await stranger.get_session(session.id)
    assert raised.value.code == "not_found"
    await client.delete_session(session.id)


async def test_an_unknown_session_is_not_found(client) -> None:
    with pytest.raises(errors.NotFoundError, match="not_found"):
        await client.get_session("ses_does_not_exist")


async def test_bad_input_is_a_bad_request_and_loses_nothing(client) -> None:
    session = await client.create_session()
    with pytest.raises(errors.BadRequestError):
        await client.reply_permission(session.id, "per_x", "maybe")
    with pytest.raises(errors.BadRequestError):
        await client.send_message(session.id, "")
    assert (await client.get_session(session.id)).id == session.id
    await client.delete_session(session.id)


async def test_sandbox_limits_asked_for_are_in_force_and_above_the_server_is_refused(client) -> None:
    session = await client.create_session(
        limits=wire.SandboxLimits(memory_bytes=1 << 30, processes=256), egress_allow=["*.github.com"],
    )
    assert session.limits is not None and session.limits.memory_bytes == 1 << 30
    assert session.limits.processes == 256 and session.egress_allow == ["*.github.com"]
    with pytest.raises(errors.BadRequestError, match="above the server's limit"):
        await client.create_session(limits=wire.SandboxLimits(memory_bytes=1 << 50))
    await client.delete_session(session.id)


async def test_an_unreachable_gateway_keeps_its_cause() -> None:
    client = proliferate.Client("http://127.0.0.1:9", token="t", request_timeout=5)
    with pytest.raises(errors.UnavailableError) as raised:
        await client.list_sessions()
    assert isinstance(raised.value.__cause__, ConnectionError)


def test_configuration_errors_are_raised_at_once() -> None:
    with pytest.raises(proliferate.ProliferateError, match="one of a token, a token source"):
        proliferate.Client("http://127.0.0.1:9")


async def test_service_credentials_sign_their_own_tokens(server) -> None:
    service = proliferate.ServiceCredentials("billing-bot", "acme", server.service_secret())
    client = proliferate.Client(server.url, service=service)
    session = await client.create_session(title="from a service")
    assert session.created_by == "billing-bot"
    await client.delete_session(session.id)


async def test_a_token_source_is_asked_again_when_the_token_expired(server) -> None:
    expired = server.token(ttl_secs=1)
    fresh = server.token()
    await asyncio.sleep(2.1)  # past the one-second lifetime of `expired`
    asks: list[bool] = []

    async def token_source(refresh: bool) -> str:
        asks.append(refresh)
        return fresh if refresh else expired

    client = proliferate.Client(server.url, token_source=token_source)
    session = await client.create_session()
    assert asks == [False, True], "an expired token is refreshed once"
    async with client.connect(session.id) as connection:
        async with asyncio.timeout(120):
            first = await connection.next_update()
    assert isinstance(first, wire.Welcome)
    assert asks == [False, True, False, True], "the connection refreshes too"
    await client.delete_session(session.id)

    def failing(refresh: bool) -> str:
        raise LookupError("no token in the keychain")

    with pytest.raises(errors.UnauthenticatedError, match="no token in the keychain"):
        await proliferate.Client(server.url, token_source=failing).list_sessions()


async def test_a_coroutine_token_source_that_never_answers_fails_within_the_request_timeout(
    server,
) -> None:
    never = asyncio.Event()

    async def token_source(refresh: bool) -> str:
        await never.wait()
        return "never"

    client = proliferate.Client(server.url, token_source=token_source, request_timeout=1)
    with pytest.raises(errors.UnauthenticatedError, match="no token within 1 s"):
        async with asyncio.timeout(60):
            await client.list_sessions()
