"""Signed, expiring download links for local storage (S3 serves its own presigned URLs)."""

from collections.abc import Callable

from django.core import signing
from django.http import FileResponse, Http404, HttpRequest

from marketplace.core.storage import LocalStorage, StorageError, get_storage


def signed_download(request: HttpRequest, token: str, *, grant_live: Callable[[str], bool]) -> FileResponse:
    """Serve the object behind a signed link. A link issued under a grant (an entitlement)
    is honoured only while ``grant_live(grant)`` says so: revoking the grant kills every
    link issued under it, however long their signatures have left. The project's URL
    configuration supplies ``grant_live`` (the apps that issue grants sit above this one)."""
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        raise Http404
    try:
        key, filename, grant = LocalStorage.resolve_download_token(token)
        if grant is not None and not grant_live(grant):
            raise KeyError(grant)
        handle = storage.open(key)
    except (signing.BadSignature, StorageError, KeyError, ValueError):
        # Expired, tampered with, revoked, or for an object that is gone: one answer for all.
        raise Http404 from None
    return FileResponse(handle, as_attachment=bool(filename), filename=filename or key.rsplit("/", 1)[-1])
