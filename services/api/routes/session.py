"""``POST /v1/session`` (sign in: the key is checked and kept in an HttpOnly, SameSite=Strict
cookie, so the dashboard never puts it in a URL or in script-readable storage) and
``DELETE /v1/session`` (sign out)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import failed_auth
from services.api.keys import check_key
from shared.config import get_settings

router = APIRouter()


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=200)


def _not_blocked(request: Request) -> str:
    client = request.client.host if request.client else "?"
    if failed_auth(request).blocked(client):
        raise HTTPException(429, "too many failed key checks; try again later")
    return client


@router.post("/v1/session")
def sign_in(body: SignIn, request: Request, client: str = Depends(_not_blocked)) -> JSONResponse:
    scopes = check_key(body.key)
    if scopes is None:
        failed_auth(request).failed(client)
        raise HTTPException(401, "invalid API key")
    response = JSONResponse({"scopes": scopes})
    response.set_cookie(
        get_settings().api.session_cookie,
        body.key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.delete("/v1/session")
def sign_out() -> JSONResponse:
    response = JSONResponse({"signed_out": True})
    response.delete_cookie(get_settings().api.session_cookie, path="/")
    return response
