"""The organization a request acts for.

A user may belong to several organizations; each request acts for one of them, named in
the ``X-Organization`` header (its slug). Without it, the user's only organization in
which they hold the role the operation needs is taken; when there are several, the
request is refused with ``organization_required``.
"""

from __future__ import annotations

from marketplace.accounts.errors import AccountErrorCode
from marketplace.accounts.models import Organization, OrganizationRole
from marketplace.accounts.selectors import organizations_for
from marketplace.core.errors import Forbidden, InvalidInput, field_error

HEADER = "X-Organization"
# Django's META name of the header, for test clients.
META_KEY = "HTTP_X_ORGANIZATION"

_NOT_A = {
    OrganizationRole.ADMIN: AccountErrorCode.NOT_AN_ADMIN,
    OrganizationRole.SELLER: AccountErrorCode.NOT_A_SELLER,
    OrganizationRole.BUYER: AccountErrorCode.NOT_A_BUYER,
}


def requested_slug(request, *, field: str | None = None) -> str | None:
    """The organization slug the request names: the ``X-Organization`` header, else the
    body field ``field`` (operations that took it in their body before the header existed)."""
    slug = (request.headers.get(HEADER) or "").strip()
    if not slug and field and isinstance(getattr(request, "data", None), dict):
        slug = str(request.data.get(field) or "").strip()
    return slug or None


def acting_organization(*, user, role: str, slug: str | None = None) -> Organization:
    """The organization ``user`` acts for in ``role``: the one named by ``slug``, else
    their only organization with that role.

    Raises Forbidden ``not_a_<role>`` when the user holds the role in no organization
    (or not in the one named) and InvalidInput ``organization_required`` when several
    qualify and none is named.
    """
    orgs = list(organizations_for(user=user, role=role).order_by("slug")[:50])
    if slug:
        orgs = [o for o in orgs if o.slug == slug]
        if not orgs:
            raise Forbidden(
                f"You are not a {role} member of that organization.",
                code=_NOT_A[role],
                details=[field_error(HEADER, f"not one of your {role} organizations", _NOT_A[role])],
            )
    if not orgs:
        raise Forbidden(f"This needs the {role} role in an organization.", code=_NOT_A[role])
    if len(orgs) > 1:
        raise InvalidInput(
            "Name the organization you act for.",
            code=AccountErrorCode.ORGANIZATION_REQUIRED,
            details=[field_error(HEADER, f"required: you are a {role} in several organizations", "required")],
        )
    return orgs[0]


def member_organizations(*, user, slug: str | None = None):
    """The user's organizations, or only the one named (empty when the user is not its
    member): what list views show."""
    qs = organizations_for(user=user)
    return qs.filter(slug=slug) if slug else qs
