"""Signed, expiring download links for local storage (S3 serves its own presigned URLs)."""

from django.core import signing
from django.http import FileResponse, Http404, HttpRequest

from marketplace.core.storage import LocalStorage, StorageError, get_storage


def signed_download(request: HttpRequest, token: str) -> FileResponse:
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        raise Http404
    try:
        key, filename = LocalStorage.resolve_download_token(token)
        handle = storage.open(key)
    except (signing.BadSignature, StorageError, KeyError, ValueError):
        # Expired, tampered with, or for an object that is gone: one answer for all.
        raise Http404 from None
    return FileResponse(handle, as_attachment=bool(filename), filename=filename or key.rsplit("/", 1)[-1])
