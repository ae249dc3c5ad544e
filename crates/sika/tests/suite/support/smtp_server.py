#!/usr/bin/env python3
"""A real SMTP server on loopback for Sika's mail tests (aiosmtpd): STARTTLS
required before anything is sent, AUTH required and only over TLS, each
message saved whole as one .eml file in --maildir (written to a temporary
name, then renamed, so a reader never sees half a message)."""
import argparse
import os
import ssl
import threading
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saver:
    def __init__(self, maildir):
        self.maildir = maildir

    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(self.maildir, f"{uuid.uuid4().hex}.eml")
        with open(name + ".tmp", "wb") as f:
            tls = b"yes" if session.ssl is not None else b"no"
            f.write(b"X-Test-Tls: " + tls + b"\r\n")
            f.write(b"X-Test-Rcpt: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.rename(name + ".tmp", name)
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    for a in ("--port", "--cert", "--key", "--maildir", "--user", "--password"):
        p.add_argument(a, required=True)
    args = p.parse_args()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == args.user.encode()
            and auth_data.password == args.password.encode()
        )
        return AuthResult(success=ok)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    controller = Controller(
        Saver(args.maildir),
        hostname="127.0.0.1",
        port=int(args.port),
        tls_context=ctx,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_required=True,
    )
    controller.start()
    print("listening", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
