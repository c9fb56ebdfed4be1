from django.urls import path

from marketplace.listings import apis

# The public search, the most requested route: the project's URLconf lists it ahead of
# every app's routes (resolving a path tries the included URLconfs one after another).
search_urlpatterns = [
    path("listings/", apis.ListingSearchApi.as_view(), name="listing-search"),
]

urlpatterns = [
    path("listings/<slug:slug>/", apis.ListingDetailApi.as_view(), name="listing-detail"),
    path("listings/<slug:slug>/orders/", apis.OrderCreateApi.as_view(), name="listing-order-create"),
    path("orders/", apis.OrderListApi.as_view(), name="order-list"),
    path("orders/<int:order_id>/mark-paid/", apis.OrderMarkPaidApi.as_view(), name="order-mark-paid"),
    path("orders/<int:order_id>/approve/", apis.OrderApproveApi.as_view(), name="order-approve"),
    path("orders/<int:order_id>/reject/", apis.OrderRejectApi.as_view(), name="order-reject"),
    path("orders/<int:order_id>/cancel/", apis.OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<int:order_id>/refund/", apis.OrderRefundApi.as_view(), name="order-refund"),
    path("seller/orders/", apis.SellerOrderListApi.as_view(), name="seller-order-list"),
    path("datasets/<slug:slug>/sales-terms/", apis.SalesTermsApi.as_view(), name="dataset-sales-terms"),
    path("entitlements/<int:entitlement_id>/claim-update/", apis.EntitlementClaimUpdateApi.as_view(), name="entitlement-claim-update"),
    path("entitlements/", apis.EntitlementListApi.as_view(), name="entitlement-list"),
    path("entitlements/<int:entitlement_id>/files/", apis.EntitlementFilesApi.as_view(), name="entitlement-files"),
    path("entitlements/<int:entitlement_id>/revoke/", apis.EntitlementRevokeApi.as_view(), name="entitlement-revoke"),
    path("consent-notices/", apis.ConsentNoticeListApi.as_view(), name="consent-notice-list"),
    path("seller/consent-notices/", apis.SellerConsentNoticeListApi.as_view(), name="seller-consent-notice-list"),
    path("consent-notices/<int:notice_id>/acknowledge/", apis.ConsentNoticeAcknowledgeApi.as_view(), name="consent-notice-acknowledge"),
]
