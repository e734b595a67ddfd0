#!/usr/bin/python3
"""SMTP server for zk-monitor's tests: STARTTLS required, AUTH (PLAIN or
LOGIN) checked against one user, every message stored in a maildir with
two headers added: X-Test-Auth-User (who logged in) and X-Test-TLS
(whether the session was encrypted). Loopback only; stops on SIGTERM.

usage: smtp_tls_auth.py PORT MAILDIR CERT KEY USER PASSWORD
"""

import mailbox
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir, cert, key, user, password = sys.argv[1:7]


class Handler:
    def __init__(self):
        self.box = mailbox.Maildir(maildir, create=True)

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data if isinstance(session.auth_data, bytes) else b"-"
        tls = b"yes" if session.ssl else b"no"
        head = b"X-Test-Auth-User: " + login + b"\r\nX-Test-TLS: " + tls + b"\r\n"
        self.box.add(head + envelope.original_content)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    if not ok:
        # handled=False: let aiosmtpd answer "535 ... credentials invalid".
        return AuthResult(success=False, handled=False)
    return AuthResult(success=True, auth_data=auth_data.login)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=ctx,
    require_starttls=True,
    authenticator=authenticator,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
controller.stop()
