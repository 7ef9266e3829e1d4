"""`POST /signup {user_id, referral_code}`: a new user, and pinax's response to the referral.

What a pinax-referrals site does when someone signs up with a code: find the
referral, create the user, record the response (`Referral.respond`, the call behind
pinax's own `record_response` and link view) with the user, in one transaction.
No password is set (hashing one would cost far more than the rest, and the
`referrals` signup sets none either). The response carries no session key: an API
call has no browser session, and storing one would be a write more for the peer.
"""

import json

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pinax.referrals.models import Referral


class _NoSession:
    session_key = ""


@csrf_exempt
@require_POST
def signup(request: HttpRequest) -> JsonResponse:
    try:
        body = json.loads(request.body)
        user_id, code = str(body["user_id"]), str(body["referral_code"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "user_id and referral_code are required"}, status=400)
    request.session = _NoSession()  # type: ignore[assignment]
    try:
        with transaction.atomic():
            referral = Referral.objects.filter(code=code).first()
            if referral is None or not referral.is_active():
                return JsonResponse({"error": "no such referral code"}, status=404)
            user = User.objects.create_user(username=user_id)
            response = referral.respond(request, "USER_SIGNUP", user=user)
    except IntegrityError:
        return JsonResponse({"error": "already signed up"}, status=409)
    return JsonResponse(
        {"referral_response": response.pk, "referrer_id": referral.user_id}, status=201
    )


urlpatterns = [path("signup", signup)]
