"""Seed the load test's catalogue (run inside Django by load/run.py): a seller with N
published datasets, each with a few stored files, a buyer entitled to all of them, and
sellers with a draft version each to upload into. Prints one JSON line for the driver.

Publishing goes through the real state machine and listing_sync; the files are put in
storage directly (the upload path itself is what the seller threads exercise).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys


def main() -> None:
    import django

    django.setup()
    from datasets import services as ds
    from datasets.models import DatasetFile
    from marketplace.core.storage import get_storage
    from marketplace.listings import services as ls
    from tests import factories

    n = int(os.environ.get("LOAD_DATASETS", "30"))
    n_sellers = int(os.environ.get("LOAD_SELLERS", "2"))
    file_kb = int(os.environ.get("LOAD_FILE_KB", "64"))
    storage = get_storage()
    staff = factories.make_moderator(username="load-moderator")
    seller = factories.make_seller(username="load-catalogue")
    buyer = factories.make_buyer(username="load-buyer")
    words = ["warehouse", "kitchen", "gripper", "humanoid", "forklift", "drone", "outdoor", "bin picking", "assembly", "sorting"]
    entitlements = []
    for i in range(n):
        dataset = factories.make_dataset(seller=seller, slug=f"load-{i}", title=f"{words[i % len(words)].title()} robot masks {i}", summary=f"{words[(i * 3) % len(words)]} scenes", price="0")
        version = ds.version_create(dataset=dataset, actor=seller.user)
        for j in range(3):
            data = os.urandom(file_kb * 1024)
            key = f"load/{version.pk}/file-{j}.bin"
            storage.put_bytes(key, data)
            DatasetFile.objects.create(version=version, role="images", path=f"images/{j}.bin", size=len(data), sha256=hashlib.sha256(data).hexdigest(), storage_key=key)
        version.statistics = {"images": 3, "frames": 3, "instances": 10 + i}
        version.save(update_fields=["statistics"])
        for state in ("submitted", "processing", "in_review", "published"):
            ds.version_transition(version=version, to_state=state, actor=staff.user, reason="load seed")
        listing = ls.listing_sync(dataset=dataset)
        order, _ = ls.order_create(listing=listing, buyer=buyer.org, user=buyer.user, license="CC-BY-4.0", version_number=version.number, idempotency_key=f"load-{i}")
        entitlements.append(order.entitlement.pk)  # free: paid at once, entitlement granted
    sellers = []
    for s in range(n_sellers):
        actor = factories.make_seller(username=f"load-seller-{s}")
        version = factories.make_version(seller=actor)
        sellers.append({"token": actor.token, "version": version.pk})
    print("SEED" + json.dumps({"buyer": buyer.token, "entitlements": entitlements, "sellers": sellers, "slugs": [f"load-{i}" for i in range(n)]}))


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    main()
