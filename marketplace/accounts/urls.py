from django.urls import path

from marketplace.accounts import apis

urlpatterns = [
    path("auth/login/", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/logout/", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/register/", apis.RegisterApi.as_view(), name="auth-register"),
    path("auth/password/", apis.PasswordChangeApi.as_view(), name="auth-password"),
    path("me", apis.MeApi.as_view(), name="me"),
]
