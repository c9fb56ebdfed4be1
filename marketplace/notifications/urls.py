from django.urls import path

from marketplace.notifications import apis

urlpatterns = [
    path("notifications/", apis.NotificationListApi.as_view(), name="notification-list"),
    path("notifications/read/", apis.NotificationReadApi.as_view(), name="notification-read"),
    path("organizations/<slug:slug>/webhooks/", apis.WebhookListApi.as_view(), name="organization-webhooks"),
    path("webhooks/<int:webhook_id>/", apis.WebhookDetailApi.as_view(), name="webhook-detail"),
    path("webhooks/<int:webhook_id>/rotate-secret/", apis.WebhookRotateSecretApi.as_view(), name="webhook-rotate-secret"),
    path("webhooks/<int:webhook_id>/deliveries/", apis.WebhookDeliveryListApi.as_view(), name="webhook-deliveries"),
    path("webhook-deliveries/<uuid:delivery_id>/resend/", apis.DeliveryResendApi.as_view(), name="webhook-delivery-resend"),
]
