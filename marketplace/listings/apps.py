from django.apps import AppConfig


class ListingsConfig(AppConfig):
    name = "marketplace.listings"
    label = "listings"
    verbose_name = "Listings, orders and entitlements"
