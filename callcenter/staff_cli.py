"""``callcenter staff``: create and mend staff accounts from the server's command line, as
``createsuperuser`` does elsewhere. A city starts with no demo data, so its first
administrator is made here; everyone else can then be invited from the admin pages.

The person at the command line acts as an administrator (:func:`operator`); every
change is the same audited action the pages use. A password is asked twice on the
terminal (never on the command line, where ``ps`` and the shell's history would keep
it), or read from standard input with ``--password-stdin`` for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from callcenter.config import Settings


def _password(args: argparse.Namespace, catalog: Any) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(catalog.text("cli.staff.password_prompt"))
    second = getpass.getpass(catalog.text("cli.staff.password_again"))
    if first != second:
        print(catalog.text("cli.staff.password_mismatch"), file=sys.stderr)
        return None
    return first


def cmd_staff(args: argparse.Namespace) -> int:
    from callcenter.actions import accounts
    from callcenter.actions.operations import operator
    from callcenter.api.http import error_body
    from callcenter.bootstrap import close_runtime, open_runtime
    from callcenter.domain.errors import HotlineError
    from callcenter.staffviews import list_staff

    settings = Settings()

    async def run() -> int:
        rt = await open_runtime(settings, start_jobs=False)
        catalog = rt.catalog
        locale = catalog.default_locale
        try:
            actor = operator()
            if args.staff_command == "list":
                async with rt.db.read() as conn:
                    rows = await list_staff(conn)
                for row in rows:
                    dept = rt.directory.by_id.get(row["department_id"] or -1)
                    last = rt.local_text(row["last_login_at"]) if row["last_login_at"] else "-"
                    flags = [] if row["active"] else [catalog.text("cli.staff.inactive")]
                    if row["two_factor"]:
                        flags.append("2FA")
                    if not row["has_password"]:
                        flags.append(catalog.text("cli.staff.no_password"))
                    print(
                        f"{row['username']:20} {row['role']:11} {row['display_name']:16} "
                        f"{dept.code if dept else '-':16} {last:17} {' '.join(flags)}".rstrip()
                    )
                return 0
            if args.staff_command == "add":
                password = None if args.link else _password(args, catalog)
                if password is None and not args.link:
                    return 2
                data = {
                    "username": args.username,
                    "display_name": args.name,
                    "role": args.role,
                    "department": args.department,
                    "locale": args.locale,
                    "phone": args.phone,
                }
                invitation = await accounts.create_staff(rt, data, actor=actor, password=password)
                print(catalog.text("cli.staff.added", username=args.username, role=args.role))
                if invitation.link:
                    print(catalog.text("cli.staff.link", link=invitation.link))
                else:
                    print(catalog.text("cli.staff.sign_in", url=rt.settings.effective_public_url))
                return 0
            user_id = await accounts.find_username(rt, args.username)
            if args.reset_two_factor:
                await accounts.reset_two_factor(rt, user_id, actor=actor)
                print(catalog.text("cli.staff.two_factor_reset", username=args.username))
                return 0
            if args.link:
                invitation = await accounts.reset_password(rt, user_id, actor=actor)
                print(catalog.text("cli.staff.link", link=invitation.link))
                return 0
            password = _password(args, catalog)
            if password is None:
                return 2
            ended = await accounts.change_password(rt, user_id, password, actor=actor)
            print(catalog.text("cli.staff.password_set", username=args.username, sessions=ended))
            return 0
        except HotlineError as error:
            print(error_body(rt, error, locale)["error"]["message"], file=sys.stderr)
            return 2
        finally:
            await close_runtime(rt)

    return asyncio.run(run())


def add_commands(sub: Any) -> None:
    staff = sub.add_parser("staff", help="staff accounts: add the first admin, mend, list")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="create a staff account (e.g. the first admin)")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="the name colleagues see")
    add.add_argument(
        "--role", default="admin", choices=["admin", "supervisor", "agent", "department"]
    )
    add.add_argument("--department", help="department code (role department)")
    add.add_argument("--locale", choices=["zh-CN", "en"])
    add.add_argument("--phone", help="mobile number (alerts, invitations)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument(
        "--link", action="store_true", help="no password now: print a one-time set-password link"
    )
    add.set_defaults(func=cmd_staff)
    passwd = staff_sub.add_parser("passwd", help="set a password (lifts a lock, ends sessions)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.add_argument(
        "--link", action="store_true", help="void the password; print a one-time link instead"
    )
    passwd.add_argument(
        "--reset-two-factor",
        action="store_true",
        help="forget the authenticator app (a lost phone): enrolled again at the next sign-in",
    )
    passwd.set_defaults(func=cmd_staff)
    listing = staff_sub.add_parser("list", help="every account, its role and last sign-in")
    listing.set_defaults(func=cmd_staff)
