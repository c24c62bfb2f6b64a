#!/usr/bin/env python3
"""A throw-away FreeRADIUS 3.2 directory for the RADIUS tests (tests/radius.rs), the end-to-end
tests and scripts/demo.sh: writes a minimal, self-contained configuration into a directory and
runs `freeradius` in the foreground on it (exec, so the caller's process is the server and
killing it stops the server).

  freeradius.py --dir DIR --listen ADDR --port PORT --secret SECRET --client CIDR
                --user NAME:PASSWORD [--user NAME:PASSWORD ...] [--debug]
                [--die-with-parent]

  --dir DIR        where the configuration goes (created if missing; files in it are
                   overwritten; nothing else is written there or anywhere else).
  --listen ADDR    the IPv4 address to listen on for Access-Requests (auth only, UDP).
  --port PORT      the UDP port.
  --secret SECRET  the shared secret of the one client.
  --client CIDR    who may ask (`127.0.0.0/8`, `198.18.0.0/15`, or a single address).
  --user N:P       a user with a cleartext password (checked with PAP); the password is
                   everything after the first `:`. At least one.
  --debug          `freeradius -X` (every packet and every module call on stdout) instead of
                   the normal log (one line per start, and errors, on stdout).
  --die-with-parent
                   the server gets SIGTERM when the thread that started this script ends
                   (Linux PR_SET_PDEATHSIG, kept across the exec): a test binary killed
                   mid-test leaves no server behind. Only for a caller whose starting thread
                   outlives the server (tests/radius.rs), not for a shell that backgrounds it.

The server is ready when `Ready to process requests` appears on stdout (~0.1 s).

What the configuration does, and why:

- No `user`/`group`: the server keeps the caller's identity, so it runs unprivileged in a test
  and can read and write DIR.
- The client must send a Message-Authenticator (`require_message_authenticator = yes`): the
  box always does (RFC 3579, the BlastRADIUS advisory), and a request whose
  Message-Authenticator does not check (a wrong shared secret) is dropped without an answer.
  A request without one is dropped silently (nothing in the normal log). By hand, `radtest`
  adds it; `radclient` needs `Message-Authenticator = 0x00` among its attributes:

      radtest alice wonderland 127.0.0.1:PORT 0 SECRET
      echo 'User-Name=alice,User-Password=wonderland,Message-Authenticator=0x00' |
          radclient -x 127.0.0.1:PORT auth SECRET

- FreeRADIUS 3.2.1 (Debian bookworm) answers Access-Accept and Access-Reject WITHOUT a
  Message-Authenticator (releases after the BlastRADIUS advisory add one): clients must not
  require it.

- `reject_delay = 0`: the stock one-second delay of every Access-Reject would make each
  wrong-password test wait.
- Modules `files` (the users, as `Cleartext-Password`) and `pap`; an unknown user finds no
  password, gets no Auth-Type and is rejected. No EAP, TLS, SQL, accounting, proxying or other
  virtual servers, so the server is ready in a fraction of a second.

Exits with freeradius's status; a configuration error is printed on stderr before the exec.
"""

import argparse
import ctypes
import ipaddress
import os
import signal
import sys

FREERADIUS = "/usr/sbin/freeradius"
# The Debian package's dictionaries and modules.
DICTDIR = "/usr/share/freeradius"
LIBDIR = "/usr/lib/freeradius"


def quote(value):
    """A FreeRADIUS double-quoted string: backslash and double quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def radiusd_conf(args):
    client = ipaddress.ip_network(args.client, strict=False)
    return f"""# Written by tests/net/freeradius.py; rewritten at every start.
prefix = /usr
confdir = {args.dir}
raddbdir = {args.dir}
logdir = {args.dir}
run_dir = {args.dir}
db_dir = {args.dir}
libdir = {LIBDIR}
dictdir = {DICTDIR}
modconfdir = {args.dir}
name = freeradius
pidfile = {args.dir}/freeradius.pid

max_request_time = 5
cleanup_delay = 2
max_requests = 4096
hostname_lookups = no

log {{
    destination = stdout
    colourise = no
    stripped_names = no
    auth = yes
    auth_badpass = no
    auth_goodpass = no
}}

security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = no
}}

proxy_requests = no

thread pool {{
    start_servers = 2
    max_servers = 8
    min_spare_servers = 1
    max_spare_servers = 4
    max_requests_per_server = 0
    auto_limit_acct = no
}}

client box {{
    ipaddr = {client}
    secret = {quote(args.secret)}
    require_message_authenticator = yes
    shortname = box
}}

modules {{
    files {{
        filename = {args.dir}/users
        acctusersfile = {args.dir}/users.acct
        preproxy_usersfile = {args.dir}/users.preproxy
    }}
    pap {{
    }}
}}

server default {{
    listen {{
        type = auth
        ipaddr = {args.listen}
        port = {args.port}
    }}
    authorize {{
        files
        pap
    }}
    authenticate {{
        Auth-Type PAP {{
            pap
        }}
    }}
}}
"""


def users_file(users):
    lines = ["# Written by tests/net/freeradius.py."]
    for name, password in users:
        lines.append(f"{quote(name)} Cleartext-Password := {quote(password)}")
        lines.append("")
    return "\n".join(lines) + "\n"


def parse_user(text):
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--user {text!r}: expected NAME:PASSWORD")
    # One user per line of the users file.
    if any(c in text for c in "\r\n\0"):
        raise argparse.ArgumentTypeError(f"--user {text!r}: line break or NUL")
    return name, password


def die_with_parent(parent):
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_PDEATHSIG): {os.strerror(ctypes.get_errno())}")
    # The parent may have gone before the prctl: then no signal would ever come.
    if os.getppid() != parent:
        sys.exit("the parent exited before the server started")


def main():
    parent = os.getppid()
    parser = argparse.ArgumentParser(
        description="Write a minimal FreeRADIUS configuration into DIR and run it."
    )
    parser.add_argument("--dir", required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--user", action="append", type=parse_user, required=True)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--die-with-parent", action="store_true")
    args = parser.parse_args()

    try:
        ipaddress.IPv4Address(args.listen)
        ipaddress.ip_network(args.client, strict=False)
    except ValueError as e:
        parser.error(str(e))
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port}: not a UDP port")
    if not args.secret:
        parser.error("--secret: empty")
    if not os.path.exists(FREERADIUS):
        sys.exit(f"{FREERADIUS} is missing: run scripts/setup.sh (package freeradius)")

    args.dir = os.path.abspath(args.dir)
    os.makedirs(args.dir, exist_ok=True)
    files = {
        "radiusd.conf": radiusd_conf(args),
        "users": users_file(args.user),
        "users.acct": "",
        "users.preproxy": "",
        # FreeRADIUS reads `dictionary` from the configuration directory after its own.
        "dictionary": "# Written by tests/net/freeradius.py: the package's dictionaries only.\n",
    }
    for name, text in files.items():
        path = os.path.join(args.dir, name)
        with open(path, "w") as f:
            f.write(text)
        # The configuration holds the secret and the passwords.
        os.chmod(path, 0o600)

    command = [FREERADIUS, "-f", "-l", "stdout", "-d", args.dir]
    if args.debug:
        command.append("-X")
    if args.die_with_parent:
        die_with_parent(parent)
    sys.stdout.flush()
    os.execv(FREERADIUS, command)


if __name__ == "__main__":
    main()
