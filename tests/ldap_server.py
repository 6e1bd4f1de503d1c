"""A throwaway OpenLDAP directory for the tests, as scripts/postgres is for PostgreSQL.

Each `LdapServer` is Debian's own slapd with a cn=config of its own (loaded with `slapadd -n0`:
an mdb database, the memberof and ppolicy overlays, TLS with a certificate from a test CA), its
people and groups loaded with `slapadd`, listening on free loopback ports: ldap:// (StartTLS
offered) and ldaps://. It is stopped and its folder deleted on exit. Changes while it runs go
through `ldapmodify`, as a directory admin would make them.

    with LdapServer() as directory:
        app_config.update(directory.settings())

slapadd writes entries without running the overlays, so the people's memberOf values are
written with them here, matching the groups; changes made later through `modify` are kept in
step by the memberof overlay itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.certificates import certificates

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMAS = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")
SUFFIX = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "directory admin password"
SERVICE_DN = f"cn=causerie,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service account password"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
PERMANENTLY_LOCKED = "000001010000Z"  # ppolicy's value for an account an admin locked


@dataclass
class Person:
    uid: str
    password: str
    name: str = ""
    mail: str = ""
    groups: tuple[str, ...] = ()  # cns of groups under ou=groups
    locked: bool = False  # pwdAccountLockedTime = 000001010000Z: disabled by the directory's admin

    @property
    def dn(self) -> str:
        return f"uid={self.uid},{PEOPLE}"


@dataclass
class Group:
    cn: str
    description: str = ""


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


LONG_UID = "jean-baptiste.de-la-fontaine-saint-hilaire.direction-financiere.paris"
DEFAULT_PEOPLE = (
    Person(
        "alice",
        "alice's directory password",
        "Alice Martin",
        "alice@example.com",
        ("staff", "causerie-admins"),
    ),
    Person("bob", "bob's directory password", "Bob Durand", "bob@example.com", ("staff",)),
    Person("carol", "carol's directory password", "Carol Petit", "carol@example.com"),
    Person("dora", "dora's directory password", "Dora Leroy", "dora@example.com", ("staff",), locked=True),
    # A uid longer than a username here may be (64): the directory allows it.
    Person(LONG_UID, "jean-baptiste's password", "Jean-Baptiste de La Fontaine", "jb@example.com"),
)
DEFAULT_GROUPS = (Group("staff", "Everyone"), Group("causerie-admins", "Causerie admins"), Group("research"))


def ssha(password: str) -> str:
    """userPassword as OpenLDAP stores it ({SSHA}: salted SHA-1), never in clear."""
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LdapServer:
    people: tuple[Person, ...] = DEFAULT_PEOPLE
    groups: tuple[Group, ...] = DEFAULT_GROUPS
    folder: Path = field(init=False)
    port: int = field(init=False, default=0)
    ldaps_port: int = field(init=False, default=0)
    process: subprocess.Popen | None = field(init=False, default=None)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def other_ca_file(self) -> Path:
        return self.folder / "other-ca.pem"

    @property
    def listeners(self) -> str:
        return f"{self.url}/ {self.ldaps_url}/"

    def settings(self, **overrides) -> dict:
        """The app's LDAP_* settings for this directory (ldap:// with StartTLS and the test CA)."""
        return {
            "LDAP_URL": self.url,
            "LDAP_STARTTLS": True,
            "LDAP_CA_FILE": str(self.ca_file),
            "LDAP_BIND_DN": SERVICE_DN,
            "LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
            "LDAP_USER_BASE": PEOPLE,
            "LDAP_USER_FILTER": "(&(objectClass=inetOrgPerson)(uid={username}))",
            "LDAP_ADMIN_GROUP": "causerie-admins",
            "LDAP_TIMEOUT_SECONDS": 5.0,
            **overrides,
        }

    def __enter__(self) -> LdapServer:
        if not Path(SLAPD).exists():
            raise RuntimeError("no slapd: apt-get install slapd ldap-utils (scripts/setup --test does)")
        self.folder = Path(tempfile.mkdtemp(prefix="causerie-ldap-"))
        try:
            self._write_files()
            self._slapadd("0", self._config_ldif())
            self._slapadd("1", self._data_ldif())
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def stop(self) -> None:
        """The server gone (its files, CA included, stay until the end of the `with`)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def modify(self, ldif: str) -> None:
        """Change the directory through ldapmodify, bound as its admin."""
        subprocess.run(
            ["ldapmodify", "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
            input=ldif,
            text=True,
            check=True,
            capture_output=True,
            timeout=30,
        )

    def add_to_group(self, uid: str, group: str) -> None:
        self._change_member("add", uid, group)

    def remove_from_group(self, uid: str, group: str) -> None:
        self._change_member("delete", uid, group)

    def _change_member(self, change: str, uid: str, group: str) -> None:
        member = f"uid={uid},{PEOPLE}"
        self.modify(f"dn: {group_dn(group)}\nchangetype: modify\n{change}: member\nmember: {member}\n")

    def lock(self, uid: str) -> None:
        """Disable the person, as an OpenLDAP admin does: ppolicy's permanent lock."""
        self.modify(
            f"dn: uid={uid},{PEOPLE}\nchangetype: modify\nreplace: pwdAccountLockedTime\n"
            f"pwdAccountLockedTime: {PERMANENTLY_LOCKED}\n"
        )

    def binds(self) -> list[str]:
        """The DNs of the binds the server received so far, from its log (service account's too)."""
        log = (self.folder / "slapd.log").read_text(errors="replace")
        return re.findall(r" BIND dn=\"([^\"]*)\" method=128", log)

    def delete(self, uid: str) -> None:
        self.modify(f"dn: uid={uid},{PEOPLE}\nchangetype: delete\n")

    def stop_answering(self) -> None:
        """SIGSTOP: the port still accepts connections (the kernel does), nothing answers: a
        hung directory. `resume()` undoes it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    # -- set-up --

    def _write_files(self) -> None:
        made = certificates()
        (self.folder / "config").mkdir()
        (self.folder / "data").mkdir()
        self.ca_file.write_bytes(made.ca)
        self.other_ca_file.write_bytes(made.other_ca)
        (self.folder / "server.pem").write_bytes(made.server_certificate)
        key = self.folder / "server.key"
        key.write_bytes(made.server_key)
        key.chmod(0o600)

    def _config_ldif(self) -> str:
        folder = self.folder
        schemas = "".join(
            f"include: file://{SCHEMAS / name}.ldif\n\n" for name in ("core", "cosine", "inetorgperson")
        )
        return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {folder}/slapd.pid
olcTLSCACertificateFile: {folder}/ca.pem
olcTLSCertificateFile: {folder}/server.pem
olcTLSCertificateKeyFile: {folder}/server.key

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULES}
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcRootDN: {ADMIN_DN}
olcRootPW: {ssha(ADMIN_PASSWORD)}
olcDbDirectory: {folder}/data
olcDbMaxSize: 67108864
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: entryUUID eq
olcDbIndex: member eq
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by dn.exact="{SERVICE_DN}" read by self read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={{1}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{1}}ppolicy
"""

    def _data_ldif(self) -> str:
        entries = [
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
            f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
            f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
            f"cn: causerie\nuserPassword: {ssha(SERVICE_PASSWORD)}\n",
        ]
        for person in self.people:
            surname = person.name.split()[-1] if person.name else person.uid
            lines = [
                f"dn: {person.dn}",
                "objectClass: inetOrgPerson",
                f"uid: {person.uid}",
                f"cn: {person.name or person.uid}",
                f"sn: {surname}",
                f"userPassword: {ssha(person.password)}",
            ]
            if person.name:
                lines.append(f"displayName: {person.name}")
            if person.mail:
                lines.append(f"mail: {person.mail}")
            lines += [f"memberOf: {group_dn(g)}" for g in person.groups]  # see the module's docstring
            if person.locked:
                lines.append(f"pwdAccountLockedTime: {PERMANENTLY_LOCKED}")
            entries.append("\n".join(lines) + "\n")
        for group in self.groups:
            members = [p.dn for p in self.people if group.cn in p.groups]
            # groupOfNames needs a member: each group holds the admin's DN too, as directories do,
            # so that its last person can leave it.
            lines = [f"dn: {group_dn(group.cn)}", "objectClass: groupOfNames", f"cn: {group.cn}"]
            if group.description:
                lines.append(f"description: {group.description}")
            lines += [f"member: {dn}" for dn in [ADMIN_DN, *members]]
            entries.append("\n".join(lines) + "\n")
        return "\n".join(entries)

    def _slapadd(self, database: str, ldif: str) -> None:
        source = self.folder / f"load-{database}.ldif"
        source.write_text(ldif)
        done = subprocess.run(
            [SLAPADD, "-F", str(self.folder / "config"), "-n", database, "-l", str(source)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"slapadd -n{database} failed: {done.stderr.strip()}")

    def _start(self, attempts: int = 5) -> None:
        for _ in range(attempts):  # a port taken between free_port() and slapd's bind: try others
            self.port, self.ldaps_port = free_port(), free_port()
            log = (self.folder / "slapd.log").open("w")
            self.process = subprocess.Popen(
                # -d stats: in the foreground, each operation logged (the tests count the binds).
                [SLAPD, "-d", "stats", "-F", str(self.folder / "config"), "-h", self.listeners],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            if self._wait_until_listening():
                return
        raise RuntimeError(f"slapd did not start: {(self.folder / 'slapd.log').read_text()[-2000:]}")

    def _wait_until_listening(self, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                for port in (self.port, self.ldaps_port):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        return False
