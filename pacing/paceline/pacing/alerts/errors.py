"""Typed errors of the alerts package; each is a `PacingError` (hence a `ValueError`)."""

from __future__ import annotations

from paceline.pacing.errors import PacingError


class AlertError(PacingError):
    """Root of the errors of `paceline.pacing.alerts`."""


class UnknownAlertError(AlertError, LookupError):
    """An alert id that does not exist."""

    def __init__(self, alert_id: int) -> None:
        self.alert_id = alert_id
        super().__init__(f"no alert {alert_id}")


class UnknownDeliveryError(AlertError, LookupError):
    """A delivery id that does not exist."""

    def __init__(self, delivery_id: int) -> None:
        self.delivery_id = delivery_id
        super().__init__(f"no alert delivery {delivery_id}")


class AlertStateError(AlertError):
    """A life-cycle change the alert's current status does not allow."""

    def __init__(self, alert_id: int, status: str, change: str) -> None:
        self.alert_id = alert_id
        self.status = status
        super().__init__(f"alert {alert_id} is {status}; it cannot be {change}")


class NotOnCareTeamError(AlertError, PermissionError):
    """A clinician acting on an alert of a patient outside their care team."""

    def __init__(self, clinician_id: int, alert_id: int) -> None:
        self.clinician_id = clinician_id
        self.alert_id = alert_id
        super().__init__(f"clinician {clinician_id} is not on the care team of alert {alert_id}")


class ChannelConfigError(AlertError):
    """A delivery setting (SMTP URL, webhook URL or secret) that cannot be used."""

    def __init__(self, name: str, value: str, reason: str) -> None:
        self.name = name
        self.value = value
        super().__init__(f"{name}={value!r}: {reason}")


class SmtpCleartextError(AlertError):
    """An smtp:// server offers no STARTTLS, and the URL carries credentials for it.

    Logging in would send them in clear (or to whoever stripped STARTTLS from the
    EHLO reply). Not retried: the setting is the operator's to change, and the
    message says how.
    """

    def __init__(self, server: str) -> None:
        self.server = server
        super().__init__(
            f"{server} offers no STARTTLS and PACELINE_SMTP_URL carries credentials:"
            " they are not sent in clear. Use smtps:// (implicit TLS, usually port 465),"
            " a server that offers STARTTLS, or a relay on 127.0.0.1 or [::1] (loopback,"
            " where a login without TLS is allowed); or leave the user out of the URL"
            " if the server needs no login"
        )


class SmtpTlsError(AlertError):
    """The SMTP server's TLS (STARTTLS or smtps://) failed: its certificate does not verify.

    The delivery is kept and retried (the operator fixes the server's certificate
    or the trust store), then dead-lettered like any other failure; nothing is
    sent over a connection whose peer is not the server it claims to be.
    """

    def __init__(self, server: str, reason: str) -> None:
        self.server = server
        self.reason = reason
        super().__init__(f"TLS with {server} refused: {reason}")
