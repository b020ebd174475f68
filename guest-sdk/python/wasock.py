"""wasock's Python SDK for contract wasock:plugin@0.2.0.

A plugin module defines only what it uses, as plain classes:

    class Handler:
        def on_connected(self, session): ...
        def handle_text(self, session, text): ...

    class Upgrade:      # optional: who may connect
        def on_upgrade(self, request):
            return wasock.accept(topics=["lobby"])

    class Lifecycle:    # optional: sessions back after a restart
        def restore(self, sessions, state): ...

The build wraps the module with `plugin()` below, which fills in every
event and hook it leaves out. Helpers for fan-out, topics and the upgrade
answer are here too; none of them raises in a fan-out loop (writes report
outcomes as `SendStatus` values).
"""

from urllib.parse import parse_qs

from wit_world import exports
from wit_world.exports import upgrade
from wit_world.imports import endpoint, topics
from wit_world.imports.types import SendStatus, SubscribeStatus, AttachmentStatus  # noqa: F401 (re-exported)


def _id(session):
    return session if isinstance(session, int) else session.id()


def sessions():
    """The ids of every live session of this instance, oldest first."""
    return endpoint.sessions()


def broadcast_text(text, except_=None):
    """Sends `text` to every session of the endpoint (but `except_`, a session or an id)."""
    if except_ is None:
        endpoint.broadcast_text(text)
    else:
        endpoint.broadcast_text_except(text, _id(except_))


def broadcast_data(data, except_=None):
    """Sends `data` to every session of the endpoint (but `except_`)."""
    if except_ is None:
        endpoint.broadcast_data(data)
    else:
        endpoint.broadcast_data_except(data, _id(except_))


def publish_text(topic, text, except_=None):
    """Sends `text` to every member of `topic` (but `except_`)."""
    if except_ is None:
        topics.publish_text(topic, text)
    else:
        topics.publish_text_except(topic, text, _id(except_))


def publish_data(topic, data, except_=None):
    """Sends `data` to every member of `topic` (but `except_`)."""
    if except_ is None:
        topics.publish_data(topic, data)
    else:
        topics.publish_data_except(topic, data, _id(except_))


def topic_size(topic):
    """How many sessions are in `topic`."""
    return topics.size(topic)


def topic_members(topic):
    """The members of `topic` in join order (`.id`, `.attachment`)."""
    return topics.members(topic)


def accept(protocol=None, headers=(), attachment=None, topics=(), shard_key=None):
    """Lets a client in (`attachment` may be str or bytes)."""
    if isinstance(attachment, str):
        attachment = attachment.encode()
    return upgrade.Decision_Accept(
        upgrade.Accept(protocol, list(headers), attachment, list(topics), shard_key)
    )


def reject(status, body="", headers=()):
    """Turns a client away with an HTTP `status` (400-599) and a short `body`."""
    return upgrade.Decision_Reject(upgrade.Reject(status, list(headers), body))


def query_param(request, name):
    """The first value of query parameter `name` in an upgrade request, decoded."""
    values = parse_qs(request.query or "", keep_blank_values=True).get(name)
    return values[0] if values else None


class _Handler(exports.Handler):
    def on_connected(self, session):
        pass

    def handle_text(self, session, text):
        pass

    def handle_binary(self, session, data):
        pass

    def on_pong(self, session, data):
        pass

    def on_drain(self, session):
        pass

    def on_disconnected(self, session):
        pass


class _Lifecycle(exports.Lifecycle):
    def restore(self, sessions, state):
        pass

    def snapshot(self):
        return b""


class _Upgrade(exports.Upgrade):
    def on_upgrade(self, request):
        return accept()


def plugin(app):
    """The export classes of the contract's world, from what `app` (a module) defines."""

    def merged(name, default):
        user = getattr(app, name, None)
        return default if user is None else type(name, (user, default), {})

    return merged("Handler", _Handler), merged("Lifecycle", _Lifecycle), merged("Upgrade", _Upgrade)
