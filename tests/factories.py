"""Test data: users in every role, organizations, datasets and versions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from marketplace.accounts import services as account_services
from marketplace.accounts.models import Organization
from marketplace.core.permissions import AUDITOR_GROUP, MODERATOR_GROUP

PASSWORD = "correct-horse-battery-staple"
_seq = itertools.count(1)


@dataclass
class Actor:
    """A user with its organization (if any), its token and a client that sends it."""

    user: object
    org: Organization | None
    token: str
    client: APIClient


def make_actor(*, role: str | None = None, org: Organization | None = None, groups: tuple[str, ...] = (), username: str | None = None, is_staff: bool = False) -> Actor:
    n = next(_seq)
    username = username or f"user{n}"
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, email=f"{username}@example.test", is_staff=is_staff)
    if role:
        org = org or account_services.organization_create(name=f"Org {username}", slug=f"org-{username}")
        account_services.membership_add(user=user, organization=org, role=role)
    for group in groups:
        account_services.staff_group_add(user=user, group_name=group)
    _token, raw = account_services.token_issue(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return Actor(user=user, org=org, token=raw, client=client)


def make_seller(**kw) -> Actor:
    return make_actor(role="seller", **kw)


def make_buyer(**kw) -> Actor:
    return make_actor(role="buyer", **kw)


def make_auditor(**kw) -> Actor:
    return make_actor(groups=(AUDITOR_GROUP,), is_staff=True, **kw)


def make_moderator(**kw) -> Actor:
    return make_actor(groups=(MODERATOR_GROUP,), is_staff=True, **kw)


def make_dataset(*, seller: Actor, slug: str | None = None, **fields):
    from datasets import services

    slug = slug or f"dataset-{next(_seq)}"
    fields.setdefault("title", slug.replace("-", " ").title())
    fields.setdefault("annotation_license", "CC-BY-4.0")
    return services.dataset_create(owner=seller.org, actor=seller.user, slug=slug, **fields)


def make_version(*, seller: Actor, dataset=None, **fields):
    from datasets import services

    dataset = dataset or make_dataset(seller=seller)
    return services.version_create(dataset=dataset, actor=seller.user, **fields)
