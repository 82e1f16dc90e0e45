"""The admin's web pages (admin role only), server-rendered from `templates/admin/`.

Every page takes `AdminDep` (anonymous visitors are sent to `/admin/login`, customers
get the 403 page) and every form post `AdminPost`, which also checks the form's CSRF
token. A post that worked answers 303 to the next page (Post/Redirect/Get) with a
one-time notice; one with mistakes shows the form again, each mistake in words next to
its field. The pages call the services with the admin's own token
(`session.auth_headers()`), so each service still checks the role itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.services.gateway import faults, service
from kansoku.services.gateway.schemas import NewProduct, ProductChange, StockChange
from kansoku.services.gateway.service import Refused
from kansoku.services.gateway.sessions import (
    AdminDep,
    CsrfChecked,
    LoginRefused,
    WebSession,
    WebSessionDep,
    log_in,
    render,
    safe_next,
    see_other,
)

router = APIRouter(prefix="/admin", include_in_schema=False)


async def _admin_post(admin: AdminDep, checked: CsrfChecked) -> WebSession:
    """An admin's form post, with the form's CSRF token checked."""
    return admin


#: Route parameter type for every admin form post.
AdminPost = Annotated[WebSession, Depends(_admin_post)]


async def _posted_form(request: Request) -> AsyncIterator[FormData]:
    """The posted form (parsed once per request, the CSRF check reads it too); the
    uploaded files it holds are closed (their temporary files removed) afterwards."""
    form = await request.form()
    try:
        yield form
    finally:
        await form.close()


#: Route parameter type: the posted form's fields and files.
PostedForm = Annotated[FormData, Depends(_posted_form)]

PRODUCTS_PER_PAGE: Final = 25
STOCK_PER_PAGE: Final = 50

#: Each form field's label, for the list of mistakes at the top of a form.
LABELS: Final = {
    "email": "E-mail address", "password": "Password",
    "name": "Name", "description": "Description", "price": "Price", "currency": "Currency",
    "category": "Category", "sku": "SKU", "inventory": "Units in stock", "image": "Picture",
    "delta": "Units to add", "reason": "Reason",
}

#: What to do about a field the form got wrong, in plain words (instead of the
#: validator's "Input should be a valid decimal").
FIELD_HELP: Final = {
    "name": "Enter the product's name (at most 200 characters).",
    "description": "Keep the description under 5,000 characters.",
    "price": "Enter a price above 0 with at most two decimals, such as 19.99.",
    "currency": "Enter a currency as three capital letters, such as USD or EUR.",
    "category": "Choose a category from the list.",
    "sku": "Leave the SKU empty, or use at most 32 characters.",
    "inventory": "Enter the units in stock as a whole number from 0 to 1,000,000.",
    "delta": "Enter a whole number of units other than 0: 20 adds twenty, -3 removes three.",
    "email": "Enter your e-mail address.",
    "password": "Enter your password.",
    "reason": "Say why, in at most 200 characters, such as “restock from supplier”.",
}

Model = TypeVar("Model", bound=BaseModel)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _validated(model: type[Model], data: Mapping[str, Any]
               ) -> tuple[Model | None, dict[str, str]]:
    """The form's data as `model`, or the mistakes by field, in words."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "form"
            errors.setdefault(name, FIELD_HELP.get(name, str(error["msg"])))
        return None, errors


def _refusal_errors(refused: Refused) -> dict[str, str]:
    """A service's "no" as a form error: next to the field it names, else on the form."""
    return {refused.field if refused.field in LABELS else "form": refused.detail}


def _clients(request: Request) -> Any:
    """The app's state: the service clients (`catalog`, `inventory`, …) and `settings`."""
    return request.app.state


class _FieldError(Exception):
    """A form field the page itself found wrong (the services never saw it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


async def _image_from(request: Request, form: FormData, name: str = "image"
                      ) -> tuple[bytes, str] | None:
    """The picture chosen in the form (bytes, media type), or None if none was chosen.
    Raises `_FieldError` for a file that is too large or not a picture."""
    upload = form.get(name)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    limit: int = request.app.state.settings.max_image_bytes
    data = await upload.read(limit + 1)  # one byte more than allowed says "too large"
    if not data:
        raise _FieldError(name, "The chosen file is empty: choose a picture.")
    if len(data) > limit:
        raise _FieldError(name, f"The picture is larger than {limit // 1024:,} KiB: choose "
                                "a smaller one.")
    media_type = service.image_type(data)
    if media_type is None:
        raise _FieldError(name, "This file is not a PNG, JPEG, WebP or GIF picture.")
    return data, media_type


def _page_links(path: str, params: Mapping[str, Any], *, offset: int, per_page: int,
                total: int) -> dict[str, str | None]:
    """The previous and next page's addresses (None at either end)."""
    def link(new_offset: int) -> str:
        query = {key: value for key, value in params.items() if value}
        if new_offset:
            query["offset"] = new_offset
        return f"{path}?{urlencode(query)}" if query else path
    return {"previous_url": link(max(offset - per_page, 0)) if offset > 0 else None,
            "next_url": link(offset + per_page) if offset + per_page < total else None}


def _offset(request: Request) -> int:
    raw = request.query_params.get("offset", "0")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


# --- logging in -----------------------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, session: WebSessionDep) -> Response:
    """The admin's login form; an admin already logged in goes straight on."""
    target = safe_next(request.query_params.get("next"), "/admin")
    if session.is_admin:
        return see_other(target)
    return _login_form(request, session, target, email="", errors={})


def _login_form(request: Request, session: WebSession, target: str, *, email: str,
                errors: dict[str, str], status_code: int = 200) -> HTMLResponse:
    return render(request, "admin/login.html", {
        "heading": "Admin login", "next": target, "values": {"email": email},
        "errors": errors, "labels": LABELS}, status_code=status_code)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: CsrfChecked, form: PostedForm) -> Response:
    """Log in with e-mail and password; an admin goes on to `next`."""
    email, password = _text(form, "email"), form.get("password")
    target = safe_next(_text(form, "next"), "/admin")
    errors = {}
    if not email:
        errors["email"] = FIELD_HELP["email"]
    if not isinstance(password, str) or not password:
        errors["password"] = FIELD_HELP["password"]
    if errors:
        return _login_form(request, session, target, email=email, errors=errors,
                           status_code=422)
    assert isinstance(password, str)
    try:
        session = await log_in(request, email, password)
    except LoginRefused as refused:
        return _login_form(request, session, target, email=email,
                           errors={"form": refused.message}, status_code=401)
    if not session.is_admin:
        # A customer's right password: they are logged in (as a customer), but the
        # admin pages stay closed.
        return _login_form(request, session, target, email=email, status_code=403, errors={
            "form": f"{email} is a customer account: it cannot open the admin pages. "
                    "Log in with an administrator's account."})
    session.add_message(f"Logged in as {session.email}.")
    return see_other(target)


# --- the dashboard --------------------------------------------------------------------

@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, admin: AdminDep) -> Response:
    """Today's orders and revenue, products low on stock, dead letters, and the recent
    failures, with links into the explorer."""
    state = _clients(request)
    board = await service.dashboard(state.orders, state.inventory, state.catalog,
                                    state.worker, state.settings.explorer_url,
                                    admin.auth_headers())
    return render(request, "admin/dashboard.html", {
        "heading": "Dashboard", "section": "/admin", "board": board})


# --- products -------------------------------------------------------------------------

async def _category_options(request: Request) -> list[tuple[str, str]]:
    """(slug, name) for the category choice; "" is Uncategorized."""
    categories = await service.call(_clients(request).catalog, "GET", "/categories", {})
    return [("", "Uncategorized")] + [(c["slug"], c["name"]) for c in categories
                                      if c["slug"] != "uncategorized"]


@router.get("/products", response_class=HTMLResponse)
async def products(request: Request, admin: AdminDep) -> Response:
    """Every product, newest first: search, filter by category, page."""
    state = _clients(request)
    search = request.query_params.get("q", "").strip()[:100]
    category = request.query_params.get("category", "").strip()[:64]
    offset = _offset(request)
    categories = await service.call(state.catalog, "GET", "/categories", {})
    if category not in {c["slug"] for c in categories}:
        category = ""
    page = await service.products_with_stock(state.catalog, state.inventory,
                                             limit=PRODUCTS_PER_PAGE, offset=offset,
                                             search=search, category=category)
    return render(request, "admin/products.html", {
        "heading": "Products", "section": "/admin/products", "page": page,
        "search": search, "categories": categories, "chosen_category": category,
        **_page_links("/admin/products", {"q": search, "category": category},
                      offset=offset, per_page=PRODUCTS_PER_PAGE, total=page["total"])})


def _product_form_data(form: FormData, *, with_stock: bool) -> dict[str, Any]:
    """The product form's fields as the API takes them (empty optional ones left out)."""
    data: dict[str, Any] = {
        "name": _text(form, "name"), "description": _text(form, "description"),
        "price": _text(form, "price").replace(",", "") or None,
        "currency": _text(form, "currency").upper() or "USD",
        "category": _text(form, "category") or None, "sku": _text(form, "sku") or None}
    if with_stock:
        data["inventory"] = _text(form, "inventory") or None
    return data


def _form_values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {name: _text(form, name) for name in names}


_PRODUCT_FIELDS: Final = ("name", "description", "price", "currency", "category", "sku")


@router.get("/products/new", response_class=HTMLResponse)
async def new_product_page(request: Request, admin: AdminDep) -> Response:
    """The form for a new product, with its picture."""
    return await _new_product_form(request, {"currency": "USD", "inventory": "0"}, {})


async def _new_product_form(request: Request, values: dict[str, str],
                            errors: dict[str, str], status_code: int = 200) -> HTMLResponse:
    return render(request, "admin/new_product.html", {
        "heading": "New product", "section": "/admin/products/new", "values": values,
        "errors": errors, "labels": LABELS,
        "category_options": await _category_options(request),
        "max_image_kib": request.app.state.settings.max_image_bytes // 1024},
        status_code=status_code)


@router.post("/products/new", response_class=HTMLResponse)
async def create_product(request: Request, admin: AdminPost, form: PostedForm) -> Response:
    """Create the product with its starting stock, then upload its picture (the worker
    makes the thumbnail a moment later)."""
    values = _form_values(form, (*_PRODUCT_FIELDS, "inventory"))
    new, errors = _validated(NewProduct, _product_form_data(form, with_stock=True))
    try:
        image = await _image_from(request, form)
    except _FieldError as mistake:
        errors[mistake.field] = mistake.message
        image = None
    if new is None or errors:
        return await _new_product_form(request, values, errors, status_code=422)
    state, headers = _clients(request), admin.auth_headers()
    try:
        product = await service.add_product(state.catalog, state.inventory, headers, new)
    except Refused as refused:
        return await _new_product_form(request, values, _refusal_errors(refused),
                                       status_code=refused.status)
    notice = f"“{product['name']}” was created with {new.inventory} in stock."
    if image is not None:
        try:
            await service.call(state.catalog, "PUT", f"/products/{product['id']}/image",
                               {**headers, "Content-Type": image[1]}, content=image[0])
            notice += " Its thumbnail is being made."
        except Refused as refused:
            notice += (f" Its picture was not accepted ({refused.detail}): choose another "
                       "one below.")
    admin.add_message(notice)
    return see_other(f"/admin/products/{product['id']}")


async def _product_or_404(request: Request, product_id: int) -> dict[str, Any]:
    try:
        product: dict[str, Any] = await service.call(
            _clients(request).catalog, "GET", f"/products/{product_id}", {})
    except Refused as refused:
        if refused.status == 404:
            raise Problem(404, "product-not-found",
                          f"There is no product {product_id}: it may have been deleted.",
                          title="Not Found") from refused
        raise
    return product


async def _product_page(request: Request, product: dict[str, Any], *,
                        values: dict[str, str] | None = None,
                        errors: dict[str, str] | None = None,
                        image_errors: dict[str, str] | None = None,
                        status_code: int = 200) -> HTMLResponse:
    try:
        stock = await service.call(_clients(request).inventory, "GET",
                                   f"/stock/{product['id']}", {})
    except DependencyUnavailable:
        stock = None
    if values is None:
        category = product["category"]["slug"]
        values = {"name": product["name"], "description": product["description"],
                  "price": str(product["price"]), "currency": product["currency"],
                  "category": "" if category == "uncategorized" else category,
                  "sku": product["sku"]}
    return render(request, "admin/product.html", {
        "heading": product["name"], "section": "/admin/products", "product": product,
        "stock": stock, "values": values, "errors": errors or {},
        "image_errors": image_errors or {}, "labels": LABELS,
        "category_options": await _category_options(request),
        "max_image_kib": request.app.state.settings.max_image_bytes // 1024},
        status_code=status_code)


@router.get("/products/{product_id}", response_class=HTMLResponse)
async def product_page(request: Request, product_id: int, admin: AdminDep) -> Response:
    """One product: its picture and thumbnail, its details to edit, its stock."""
    return await _product_page(request, await _product_or_404(request, product_id))


@router.post("/products/{product_id}", response_class=HTMLResponse)
async def save_product(request: Request, product_id: int, admin: AdminPost,
                       form: PostedForm) -> Response:
    """Save the product's details."""
    product = await _product_or_404(request, product_id)
    values = _form_values(form, _PRODUCT_FIELDS)
    change, errors = _validated(ProductChange, _product_form_data(form, with_stock=False))
    if change is None:
        return await _product_page(request, product, values=values, errors=errors,
                                   status_code=422)
    try:
        await service.call(_clients(request).catalog, "PUT", f"/products/{product_id}",
                           admin.auth_headers(), json=change.model_dump(mode="json"))
    except Refused as refused:
        return await _product_page(request, product, values=values,
                                   errors=_refusal_errors(refused), status_code=refused.status)
    admin.add_message("Your changes were saved.")
    return see_other(f"/admin/products/{product_id}")


@router.post("/products/{product_id}/image", response_class=HTMLResponse)
async def upload_image(request: Request, product_id: int, admin: AdminPost,
                       form: PostedForm) -> Response:
    """Replace the product's picture."""
    product = await _product_or_404(request, product_id)
    try:
        image = await _image_from(request, form)
        if image is None:
            raise _FieldError("image", "Choose a picture to upload.")
        await service.call(_clients(request).catalog, "PUT", f"/products/{product_id}/image",
                           {**admin.auth_headers(), "Content-Type": image[1]}, content=image[0])
    except _FieldError as mistake:
        return await _product_page(request, product, image_errors={"image": mistake.message},
                                   status_code=422)
    except Refused as refused:
        return await _product_page(request, product, image_errors={"image": refused.detail},
                                   status_code=refused.status)
    admin.add_message("The new picture was uploaded. Its thumbnail is being made.")
    return see_other(f"/admin/products/{product_id}")


@router.get("/products/{product_id}/delete", response_class=HTMLResponse)
async def delete_product_page(request: Request, product_id: int, admin: AdminDep
                              ) -> Response:
    """Ask before deleting: it cannot be undone."""
    product = await _product_or_404(request, product_id)
    return render(request, "admin/delete_product.html", {
        "heading": "Delete a product", "section": "/admin/products", "product": product})


@router.post("/products/{product_id}/delete", response_class=HTMLResponse)
async def delete_product(request: Request, product_id: int, admin: AdminPost) -> Response:
    """Delete the product (after the confirmation page)."""
    product = await _product_or_404(request, product_id)
    await service.call(_clients(request).catalog, "DELETE", f"/products/{product_id}",
                       admin.auth_headers())
    admin.add_message(f"“{product['name']}” was deleted.")
    return see_other("/admin/products")


# --- inventory ------------------------------------------------------------------------

@router.get("/inventory", response_class=HTMLResponse)
async def inventory(request: Request, admin: AdminDep) -> Response:
    """Stock levels and reservations of every product, low stock highlighted."""
    state = _clients(request)
    low_only = request.query_params.get("low") in ("1", "true", "on")
    offset = _offset(request)
    page = await service.stock_overview(state.inventory, state.catalog, admin.auth_headers(),
                                        limit=STOCK_PER_PAGE, offset=offset,
                                        low_only=low_only)
    return render(request, "admin/inventory.html", {
        "heading": "Inventory", "section": "/admin/inventory", "page": page,
        "low_only": low_only,
        **_page_links("/admin/inventory", {"low": "1" if low_only else ""}, offset=offset,
                      per_page=STOCK_PER_PAGE, total=page["total"])})


async def _adjust_page(request: Request, admin: WebSession, product_id: int, *,
                       values: dict[str, str], errors: dict[str, str],
                       status_code: int = 200) -> HTMLResponse:
    state = _clients(request)
    stock = await service.call(state.inventory, "GET", f"/stock/{product_id}", {})
    try:
        product = (await service.products_by_id(state.catalog, [product_id])).get(product_id)
    except DependencyUnavailable:
        product = None
    try:
        history = await service.call(state.inventory, "GET",
                                     f"/inventory/{product_id}/adjustments",
                                     admin.auth_headers(), params={"limit": 10})
    except (DependencyUnavailable, Refused):
        history = None
    name = product["name"] if product else f"product {product_id}"
    return render(request, "admin/adjust_stock.html", {
        "heading": f"Stock of {name}", "section": "/admin/inventory",
        "product_id": product_id, "product": product, "stock": stock, "history": history,
        "values": values, "errors": errors, "labels": LABELS}, status_code=status_code)


@router.get("/inventory/{product_id}", response_class=HTMLResponse)
async def adjust_page(request: Request, product_id: int, admin: AdminDep) -> Response:
    """One product's stock, and the form to restock or adjust it."""
    return await _adjust_page(request, admin, product_id, values={}, errors={})


@router.post("/inventory/{product_id}", response_class=HTMLResponse)
async def adjust_stock(request: Request, product_id: int, admin: AdminPost,
                       form: PostedForm) -> Response:
    """Restock (add units) or adjust (remove units), with a reason."""
    values = _form_values(form, ("delta", "reason"))
    delta = values["delta"].removeprefix("+")
    change, errors = _validated(StockChange, {"delta": delta or None,
                                              "reason": values["reason"]})
    if delta.lstrip("-").isdigit() and int(delta) == 0:  # valid, but changes nothing
        change, errors = None, {"delta": FIELD_HELP["delta"], **errors}
    if change is None:
        return await _adjust_page(request, admin, product_id, values=values, errors=errors,
                                  status_code=422)
    try:
        level = await service.call(_clients(request).inventory, "POST",
                                   f"/inventory/{product_id}/adjust", admin.auth_headers(),
                                   json=change.model_dump())
    except Refused as refused:
        return await _adjust_page(request, admin, product_id, values=values,
                                  errors=_refusal_errors(refused), status_code=refused.status)
    done = (f"Added {change.delta}" if change.delta > 0 else f"Removed {-change.delta}")
    admin.add_message(f"{done} (“{change.reason}”): {level['available']} available now.")
    return see_other(f"/admin/inventory/{product_id}")


# --- the mailbox and dead letters -----------------------------------------------------

@router.get("/mailbox", response_class=HTMLResponse)
async def mailbox(request: Request, admin: AdminDep) -> Response:
    """The e-mails (and text and push messages) the shop sent, newest first."""
    worker, headers = _clients(request).worker, admin.auth_headers()
    mails = await service.call(worker, "GET", "/mailbox", headers, params={"limit": 100})
    try:
        notifications = await service.call(worker, "GET", "/notifications", headers,
                                           params={"limit": 50})
    except (DependencyUnavailable, Refused):
        notifications = None
    return render(request, "admin/mailbox.html", {
        "heading": "Mailbox", "section": "/admin/mailbox", "mails": mails,
        "notifications": notifications})


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters(request: Request, admin: AdminDep) -> Response:
    """Events every delivery failed for, with their error; replay each."""
    return await _dead_letters_page(request, admin)


async def _dead_letters_page(request: Request, admin: WebSession, *,
                             replay_error: str | None = None,
                             status_code: int = 200) -> HTMLResponse:
    letters = await service.call(_clients(request).worker, "GET", "/dead-letters",
                                 admin.auth_headers(), params={"limit": 200})
    return render(request, "admin/dead_letters.html", {
        "heading": "Dead letters", "section": "/admin/dead-letters", "letters": letters,
        "replay_error": replay_error}, status_code=status_code)


@router.post("/dead-letters/{sequence}/replay", response_class=HTMLResponse)
async def replay_dead_letter(request: Request, sequence: int, admin: AdminPost) -> Response:
    """Deliver a dead letter again."""
    try:
        replayed = await service.call(_clients(request).worker, "POST",
                                      f"/dead-letters/{sequence}/replay", admin.auth_headers())
    except Refused as refused:
        return await _dead_letters_page(request, admin, replay_error=refused.detail,
                                        status_code=refused.status)
    admin.add_message(f"Dead letter {sequence} was delivered again to "
                      f"{replayed.get('subject', 'its subject')}.")
    return see_other("/admin/dead-letters")


# --- fault flags ---------------------------------------------------------------------

def _faults_page(request: Request, *, error: str | None = None, status_code: int = 200
                 ) -> HTMLResponse:
    path = request.app.state.settings.flags_file
    rows, unreadable = faults.page_rows(path)
    return render(request, "admin/faults.html", {
        "heading": "Faults", "section": "/admin/faults", "flags": rows,
        "writable": path is not None, "error": error or unreadable}, status_code=status_code)


@router.get("/faults", response_class=HTMLResponse)
async def fault_flags(request: Request, admin: AdminDep) -> Response:
    """Every fault flag: what it does, where to look, its variant, and a switch."""
    return _faults_page(request)


@router.post("/faults/reset", response_class=HTMLResponse)
async def reset_fault_flags(request: Request, admin: AdminPost) -> Response:
    """Turn every flag off."""
    faults.reset(faults.flags_file(request))
    admin.add_message("Every fault flag is off.")
    return see_other("/admin/faults")


@router.post("/faults/{name}", response_class=HTMLResponse)
async def switch_fault_flag(request: Request, name: str, admin: AdminPost,
                            form: PostedForm) -> Response:
    """Switch one flag to the variant chosen in its form."""
    try:
        flag = faults.switch(faults.flags_file(request), name, _text(form, "variant"))
    except Problem as problem:
        if problem.status >= 500:
            raise
        return _faults_page(request, error=problem.detail, status_code=problem.status)
    admin.add_message(f"{flag.name} is now {flag.variant}." if flag.variant != "off"
                      else f"{flag.name} is off.")
    return see_other("/admin/faults")
