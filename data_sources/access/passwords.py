"""Passwords at rest: argon2id, and the rule a new password must meet.

The hasher is argon2-cffi's default, which is RFC 9106's second recommended ("low-memory")
profile: argon2id, t=3, m=64 MiB, p=4, 16-byte salt, 32-byte tag. It costs about 50 ms of CPU
and 64 MiB for each verify, so logins run it off the event loop (`asyncio.to_thread`). A stored
hash carries its own parameters: after a change of profile, `needs_rehash` says so and a
successful login stores the new form.
"""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

#: Characters a password must have at least, and may have at most (argon2 takes any length, but
#: hashing a megabyte per attempt would be a cheap way to load the server).
MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def hash_password(password: str) -> str:
    """The PHC string `$argon2id$v=19$m=65536,t=3,p=4$<salt>$<tag>` of `password`, salted anew."""
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether `password` matches `stored`; False (never an exception) for a mismatch or a
    stored value that is no argon2 hash at all."""
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError
        return False


def needs_rehash(stored: str) -> bool:
    """Whether `stored` was made with other parameters than today's (then store a new hash)."""
    try:
        return _hasher.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


@cache
def dummy_hash() -> str:
    """A hash of a password nobody has, verified when a sign-in names no user, so that an unknown
    name costs the same time as a wrong password (the timing does not tell which names exist).
    Made on first use, not at import."""
    return hash_password(secrets.token_urlsafe(24))


def _character_classes(password: str) -> int:
    lower = any(c.islower() for c in password)
    upper = any(c.isupper() for c in password)
    digit = any(c.isdigit() for c in password)
    other = any(not (c.islower() or c.isupper() or c.isdigit()) for c in password)
    return lower + upper + digit + other


def check_password_policy(password: str) -> str | None:
    """Why `password` may not be used (in English, for the CLI), or None when it may.

    At least `MIN_LENGTH` characters, at most `MAX_LENGTH`, and not of one character class
    only (lower case, upper case, digits, anything else — Chinese characters are "else").
    """
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password may have at most {MAX_LENGTH} characters"
    if not password.strip():
        return "a password cannot be only spaces"
    if _character_classes(password) < 2:
        return (
            "a password needs characters of at least two kinds "
            "(lower case, upper case, digits, others)"
        )
    return None


def generate_password() -> str:
    """A random password that meets the policy: 20 URL-safe characters (≈119 bits)."""
    while True:
        password = secrets.token_urlsafe(15)
        if check_password_policy(password) is None:
            return password
