"""/api/v1/conversations: customers talk to a bot; people of the organization read and answer.

- Bots (API key) and people (JWT) start conversations and post customer messages.
  A key bound to a bot works only with that bot's conversations (others are 404).
- People only (a key gets 401 `api_key_not_allowed`): list conversations, read
  one and its messages, reply as an agent, close, return to the bot.
Another organization's conversation is 404.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import marshmallow as ma
from flask import Response, request, send_file
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationParameters

from webapp.api import (
    BOTS_OR_PEOPLE,
    ORGANIZATION_PARAMETER,
    PEOPLE_DECORATORS,
    PEOPLE_ONLY,
    REPLAYED_HEADER,
    acting_bot,
    caller_required,
    current_caller,
    person_membership,
    person_required,
    quota_exceeded,
    quota_headers,
)
from webapp.billing.periods import day_bounds
from webapp.conversations import services
from webapp.conversations.models import (
    ATTACHMENT_FILENAME_MAX_LENGTH,
    MAX_ATTACHMENT_BYTES,
    Channel,
    Conversation,
    ConversationStatus,
    Message,
    MessageKind,
)
from webapp.conversations.schemas import (
    AgentReplySchema,
    ConversationCreateSchema,
    ConversationListArgsSchema,
    ConversationSchema,
    ExchangeSchema,
    MessageCreateSchema,
    MessageIdempotencyHeaderSchema,
    MessagesArgsSchema,
    MessageSchema,
    UploadFormSchema,
)
from webapp.core.headers import user_upload
from webapp.core.pagination import paginate
from webapp.core.uploads import allow_uploads
from webapp.db import commit_keeping_objects
from webapp.errors import AppError, ErrorSchema, NotFound
from webapp.extensions import db
from webapp.kb.models import FaqEntry
from webapp.usage.services import QuotaExceeded

blp = Blueprint("conversations_api", __name__, url_prefix="/api/v1", description="Conversations")

blp.errorhandler(QuotaExceeded)(quota_exceeded)  # the envelope plus X-Quota-* and Retry-After

UPLOAD_TYPES = {
    MessageKind.IMAGE: ("image/jpeg", "image/png", "image/gif", "image/webp"),
    MessageKind.VOICE: (
        "audio/mpeg",
        "audio/wav",
        "audio/x-wav",
        "audio/ogg",
        "audio/webm",
        "audio/amr",
        "audio/mp4",
        "audio/aac",
    ),
}
MESSAGE_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": MessageCreateSchema},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["kind", "file"],
                "properties": {
                    "kind": {"type": "string", "enum": ["image", "voice"]},
                    "file": {"type": "string", "format": "binary"},
                    "text": {"type": "string", "maxLength": 2000},
                    "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
                },
            }
        },
    },
}


def _bot_conversation(conversation_id: int) -> Conversation:
    """The caller's conversation, locked for a new message; a key bound to another bot sees
    it as missing."""
    caller = current_caller()
    conversation = services.conversation_of(
        caller.organization_id, conversation_id, for_update=True
    )
    if caller.bot_id is not None and caller.bot_id != conversation.bot_id:
        raise NotFound(_("Conversation not found."), error="conversation_not_found")
    return conversation


def _validation_error(error: ma.ValidationError) -> AppError:
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return AppError(
        _("The request is not valid."), error="validation_error", status=422, errors=messages
    )


def read_message_request(header_key: str | None) -> dict[str, Any]:
    """A text message from JSON, or an image or voice clip from multipart/form-data."""
    try:
        if request.mimetype == "multipart/form-data":
            data = UploadFormSchema().load(request.form.to_dict())
            kind = MessageKind(data["kind"])
            file = request.files.get("file")
            if file is None:
                raise ma.ValidationError({"file": [_("Attach the file.")]})
            content = file.read(MAX_ATTACHMENT_BYTES + 1)
            if not content or len(content) > MAX_ATTACHMENT_BYTES:
                raise ma.ValidationError(
                    {"file": [_("Files up to %(n)d MB.", n=MAX_ATTACHMENT_BYTES // 2**20)]}
                )
            if file.mimetype not in UPLOAD_TYPES[kind]:
                raise ma.ValidationError({"file": [_("This type of file is not accepted.")]})
            if len(file.filename or "") > ATTACHMENT_FILENAME_MAX_LENGTH:
                message = _(
                    "A file name has at most %(n)d characters.", n=ATTACHMENT_FILENAME_MAX_LENGTH
                )
                raise ma.ValidationError({"file": [message]})
            data["upload"] = services.Upload(file.mimetype, file.filename or "", content)
            data["entry_id"] = None
        elif request.mimetype == "application/json":
            data = MessageCreateSchema().load(request.get_json(silent=True) or {})
            kind = MessageKind.TEXT
            data["upload"] = None
        else:
            raise AppError(
                _("Send JSON, or multipart/form-data for an image or voice clip."),
                error="unsupported_media_type",
                status=415,
            )
    except ma.ValidationError as error:
        raise _validation_error(error) from None
    key = data.get("idempotency_key")
    if key is not None and header_key is not None and key != header_key:
        raise AppError(
            _("The Idempotency-Key header and idempotency_key differ."),
            error="validation_error",
            status=422,
        )
    data["kind"] = kind
    data["idempotency_key"] = key if key is not None else header_key
    return data


def exchange_view(exchange: services.Exchange) -> dict[str, Any]:
    reply = exchange.reply
    source = None
    if reply is not None and reply.faq_entry_id is not None:
        question = exchange.source_question
        if question is None:  # a replay: the entry as it is now
            entry = db.session.get(FaqEntry, reply.faq_entry_id)
            question = entry.question if entry is not None else None
        if question is not None:
            source = {"id": reply.faq_entry_id, "question": question}
    return {
        "message": exchange.message,
        "reply": reply,
        "confidence": reply.confidence if reply is not None else None,
        "source_entry": source,
        "band": exchange.band,
        "suggestions": exchange.suggestions,
        "handoff": exchange.handoff,
        "usage": exchange.usage,
    }


def exchange_response(exchange: services.Exchange) -> tuple[dict[str, Any], int, dict[str, str]]:
    headers = quota_headers(exchange.usage)
    if exchange.replayed:
        headers[REPLAYED_HEADER] = "true"
    return exchange_view(exchange), 200 if exchange.replayed else 201, headers


@blp.route("/conversations", parameters=[ORGANIZATION_PARAMETER])
class Conversations(MethodView):
    decorators = [caller_required]

    @person_required
    @blp.arguments(ConversationListArgsSchema, location="query")
    @blp.response(200, ConversationSchema(many=True))
    @blp.paginate()
    @blp.doc(**PEOPLE_ONLY)
    def get(
        self, args: dict[str, Any], pagination_parameters: PaginationParameters
    ) -> list[Conversation]:
        """Conversations, those needing a person first, then by latest message (any member)"""
        start = day_bounds(args["start"])[0] if "start" in args else None
        end = day_bounds(args["end"])[1] if "end" in args else None
        status = ConversationStatus(args["status"]) if "status" in args else None
        query = services.conversations_of(
            person_membership().organization_id,
            bot_id=args.get("bot_id"),
            status=status,
            start=start,
            end=end,
        )
        return paginate(query, pagination_parameters)

    @blp.arguments(ConversationCreateSchema)
    @blp.response(201, ConversationSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="`bot_disabled` or `bot_mismatch`")
    @blp.alt_response(404, schema=ErrorSchema, description="`bot_not_found`")
    @blp.doc(**BOTS_OR_PEOPLE)
    def post(self, data: dict[str, Any]) -> Conversation:
        """Start a conversation with a bot (API key or member)"""
        caller = current_caller()
        bot_id = acting_bot(caller, data["bot_id"])
        if bot_id is None:
            message = _("Say which bot.")
            raise AppError(
                message, error="validation_error", status=422, errors={"bot_id": [message]}
            )
        conversation = services.start_conversation(
            caller.organization_id,
            bot_id,
            external_user_id=data["external_user_id"],
            channel=Channel(data["channel"]),
        )
        db.session.commit()
        return conversation


@blp.route("/conversations/<int:conversation_id>", parameters=[ORGANIZATION_PARAMETER])
class ConversationDetail(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, ConversationSchema)
    @blp.doc(**PEOPLE_ONLY)
    def get(self, conversation_id: int) -> Conversation:
        """One conversation (any member)"""
        return services.conversation_of(person_membership().organization_id, conversation_id)


@blp.route("/conversations/<int:conversation_id>/messages", parameters=[ORGANIZATION_PARAMETER])
class Messages(MethodView):
    decorators = [caller_required]

    @person_required
    @blp.arguments(MessagesArgsSchema, location="query")
    @blp.response(200, MessageSchema(many=True))
    @blp.paginate()
    @blp.doc(**PEOPLE_ONLY)
    def get(
        self,
        args: dict[str, Any],
        conversation_id: int,
        pagination_parameters: PaginationParameters,
    ) -> list[Message]:
        """A conversation's messages, oldest first (any member)"""
        conversation = services.conversation_of(
            person_membership().organization_id, conversation_id
        )
        return paginate(
            services.messages_of(conversation.id, args.get("after")), pagination_parameters
        )

    @blp.arguments(MessageIdempotencyHeaderSchema, location="headers")
    @blp.response(201, ExchangeSchema, description="Counted, stored and answered")
    @blp.alt_response(
        200, schema=ExchangeSchema, success=True, description="A retry: the first answer"
    )
    @blp.alt_response(
        403,
        schema=ErrorSchema,
        description="`feature_not_in_plan` (image or voice on a plan without them)",
    )
    @blp.alt_response(404, schema=ErrorSchema, description="`conversation_not_found`")
    @blp.alt_response(409, schema=ErrorSchema, description="`conversation_closed`")
    @blp.alt_response(
        422,
        schema=ErrorSchema,
        description="`not_offered`: `entry_id` is not among the suggestions last offered",
    )
    @blp.alt_response(
        429, schema=ErrorSchema, description="`quota_exceeded`: nothing stored or answered"
    )
    @blp.doc(requestBody=MESSAGE_REQUEST_BODY, **BOTS_OR_PEOPLE)
    def post(
        self, headers: dict[str, Any], conversation_id: int
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Post a customer's message and get the bot's answer (API key or member)

        Text as JSON; an image or voice clip as multipart/form-data on plans that have
        them. When the bot is unsure (`band` unsure) it offers `suggestions`; the customer's
        pick is `{"entry_id": N}` instead of text, answered with that entry and counted like
        any message. The message is counted against the monthly quota before it is stored.
        """
        caller = current_caller()
        conversation = _bot_conversation(conversation_id)
        data = read_message_request(headers["idempotency_key"])
        exchange = services.post_customer_message(
            conversation,
            kind=data["kind"],
            text=data["text"],
            entry_id=data["entry_id"],
            upload=data["upload"],
            api_key_id=caller.api_key.id if caller.api_key else None,
            idempotency_key=data["idempotency_key"],
        )
        commit_keeping_objects(db.session())
        return exchange_response(exchange)


@blp.route("/conversations/<int:conversation_id>/replies", parameters=[ORGANIZATION_PARAMETER])
class Replies(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.arguments(AgentReplySchema)
    @blp.response(201, MessageSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="`conversation_closed`")
    @blp.doc(**PEOPLE_ONLY)
    def post(self, data: dict[str, Any], conversation_id: int) -> Message:
        """Answer as an agent (any member); the bot stays quiet until returned to it"""
        message = services.agent_reply(person_membership(), conversation_id, data["text"])
        db.session.commit()
        return message


@blp.route("/conversations/<int:conversation_id>/close", parameters=[ORGANIZATION_PARAMETER])
class Close(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, ConversationSchema)
    @blp.doc(**PEOPLE_ONLY)
    def post(self, conversation_id: int) -> Conversation:
        """Close the conversation (any member)"""
        conversation = services.close_conversation(person_membership(), conversation_id)
        db.session.commit()
        return conversation


@blp.route(
    "/conversations/<int:conversation_id>/return-to-bot", parameters=[ORGANIZATION_PARAMETER]
)
class ReturnToBot(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, ConversationSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="`conversation_closed`")
    @blp.doc(**PEOPLE_ONLY)
    def post(self, conversation_id: int) -> Conversation:
        """Hand the conversation back to the bot (any member)"""
        conversation = services.return_to_bot(person_membership(), conversation_id)
        db.session.commit()
        return conversation


@blp.route(
    "/conversations/<int:conversation_id>/messages/<int:message_id>/attachment",
    parameters=[ORGANIZATION_PARAMETER],
)
class AttachmentFile(MethodView):
    decorators = [*PEOPLE_DECORATORS, user_upload]  # the last one applied: the view's own CSP

    @blp.response(200, description="The file as uploaded")
    @blp.doc(**PEOPLE_ONLY)
    def get(self, conversation_id: int, message_id: int) -> Response:
        """An image or voice clip a customer sent (any member)"""
        attachment = services.conversation_attachment(
            person_membership().organization_id, conversation_id, message_id
        )
        return send_file(
            BytesIO(attachment.data),
            mimetype=attachment.content_type,
            download_name=attachment.filename or f"message-{message_id}",
        )


allow_uploads(blp, {Messages.__name__}, MAX_ATTACHMENT_BYTES)
