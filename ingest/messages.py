"""Which OCPP messages a charger sends (and so the collector must answer), per version.

The split follows the specs' message direction (1.6 with the security whitepaper's additions,
2.0.1 part 2); a test checks it covers every schema the `ocpp` library ships, so a library
upgrade with a new message fails until the message is classified here.
"""

from __future__ import annotations

import hashlib
import json

CHARGER_INITIATED: dict[str, frozenset[str]] = {
    "1.6": frozenset({
        "Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification",
        "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction",
        "StatusNotification", "StopTransaction",
        # security whitepaper (edition 2/3)
        "LogStatusNotification", "SecurityEventNotification", "SignCertificate",
        "SignedFirmwareStatusNotification",
    }),
    "2.0.1": frozenset({
        "Authorize", "BootNotification", "ClearedChargingLimit", "DataTransfer",
        "FirmwareStatusNotification", "Get15118EVCertificate", "GetCertificateStatus",
        "Heartbeat", "LogStatusNotification", "MeterValues", "NotifyChargingLimit",
        "NotifyCustomerInformation", "NotifyDisplayMessages", "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule", "NotifyEvent", "NotifyMonitoringReport", "NotifyReport",
        "PublishFirmwareStatusNotification", "ReportChargingProfiles", "ReservationStatusUpdate",
        "SecurityEventNotification", "SignCertificate", "StatusNotification", "TransactionEvent",
    }),
}  # fmt: skip

# Sent by the central system; DataTransfer goes both ways and is listed with the charger's.
CSMS_INITIATED: dict[str, frozenset[str]] = {
    "1.6": frozenset({
        "CancelReservation", "CertificateSigned", "ChangeAvailability", "ChangeConfiguration",
        "ClearCache", "ClearChargingProfile", "DeleteCertificate", "ExtendedTriggerMessage",
        "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics",
        "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "InstallCertificate",
        "RemoteStartTransaction", "RemoteStopTransaction", "ReserveNow", "Reset",
        "SendLocalList", "SetChargingProfile", "SignedUpdateFirmware", "TriggerMessage",
        "UnlockConnector", "UpdateFirmware",
    }),
    "2.0.1": frozenset({
        "CancelReservation", "CertificateSigned", "ChangeAvailability", "ClearCache",
        "ClearChargingProfile", "ClearDisplayMessage", "ClearVariableMonitoring", "CostUpdated",
        "CustomerInformation", "DeleteCertificate", "GetBaseReport", "GetChargingProfiles",
        "GetCompositeSchedule", "GetDisplayMessages", "GetInstalledCertificateIds",
        "GetLocalListVersion", "GetLog", "GetMonitoringReport", "GetReport",
        "GetTransactionStatus", "GetVariables", "InstallCertificate", "PublishFirmware",
        "RequestStartTransaction", "RequestStopTransaction", "ReserveNow", "Reset",
        "SendLocalList", "SetChargingProfile", "SetDisplayMessage", "SetMonitoringBase",
        "SetMonitoringLevel", "SetNetworkProfile", "SetVariableMonitoring", "SetVariables",
        "TriggerMessage", "UnlockConnector", "UnpublishFirmware", "UpdateFirmware",
    }),
}  # fmt: skip

# charger_message rows: the payload of a charger message that has no table of its own.
COLUMNS = ("ts", "charge_point_id", "action", "unique_id", "payload")
DIGEST_COLUMNS = ("charge_point_id", "transaction_id", "seq_no", "digest")

# Connection events (read by serviceability features) per message, and the payload key that
# tells same-time events apart.
EVENTS: dict[str, tuple[str, str | None]] = {
    "SecurityEventNotification": ("security_event", "type"),
    "LogStatusNotification": ("log_status", "request_id"),
    "SignedFirmwareStatusNotification": ("firmware_status", "request_id"),
    "PublishFirmwareStatusNotification": ("publish_firmware_status", "request_id"),
}


def digest(payload: dict) -> str:
    """A retry's content equals the first's whatever the key order: canonical JSON, hashed."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
