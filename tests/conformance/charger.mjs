// A charge point built on ocpp-rpc (mikuso), not on the Python `ocpp` library, in strict mode:
// every CALL it sends and every CALLRESULT it gets back is checked against the official OCPP
// JSON schemas shipped with ocpp-rpc, and so is any CALL the collector sends it.
//
//   node charger.mjs WS_URL VERSION GROUP [IDENTITY]
//
// VERSION is 1.6 or 2.0.1; GROUP is `core` (boot, status, transactions, meter values) or
// `extra` (the charger-initiated notifications beyond the core). Prints one JSON line per call:
// {"action", "ok", "error" (the CALLERROR code or the strict-mode failure), "strict"
// (true when the failure is a schema failure of our call or of the collector's answer)}, then a
// final {"summary": ...} line with any CALL the collector sent and how its strict check went.
import { RPCClient } from "ocpp-rpc";

const [url, version, group = "core", identity = `RPC-${version}-${group}`] =
  process.argv.slice(2);
if (!url || !["1.6", "2.0.1"].includes(version) || !["core", "extra"].includes(group)) {
  console.error("usage: node charger.mjs WS_URL 1.6|2.0.1 core|extra [IDENTITY]");
  process.exit(2);
}

const now = (offsetS = 0) => new Date(Date.now() - 600_000 + offsetS * 1000).toISOString();

const client = new RPCClient({
  endpoint: url,
  identity,
  protocols: [`ocpp${version}`],
  strictMode: true,
  reconnect: false,
  callTimeoutMs: 10_000,
});

const strictFailures = [];
client.on("strictValidationFailure", (ev) => {
  strictFailures.push({
    method: ev.method,
    outbound: ev.outbound,
    isCall: ev.isCall,
    error: String(ev.error?.message ?? ev.error),
  });
});
const callsReceived = [];
client.handle(({ method, params }) => {
  // the collector sends no CALLs today; if it does, strict mode has already checked `params`
  callsReceived.push({ method, params });
  const err = new Error(`test charger does not implement ${method}`);
  err.rpcErrorCode = "NotImplemented";
  throw err;
});

const results = [];
async function call(action, params) {
  const before = strictFailures.length;
  try {
    const res = await client.call(action, params);
    results.push({ action, ok: true, result: res });
    console.log(JSON.stringify({ action, ok: true }));
    return res;
  } catch (e) {
    const strict = strictFailures.length > before;
    const line = {
      action,
      ok: false,
      error: e.rpcErrorCode ?? e.name,
      message: String(e.message).slice(0, 300),
      strict,
    };
    results.push(line);
    console.log(JSON.stringify(line));
    return null;
  }
}

function sampled(wh, context) {
  return [
    {
      timestamp: now(),
      sampledValue: [
        { value: String(wh), context, measurand: "Energy.Active.Import.Register", unit: "Wh" },
        { value: "7200", context, measurand: "Power.Active.Import", unit: "W" },
      ],
    },
  ];
}

function sampled201(wh, context) {
  return [
    {
      timestamp: now(),
      sampledValue: [
        {
          value: wh,
          context,
          measurand: "Energy.Active.Import.Register",
          unitOfMeasure: { unit: "Wh" },
        },
        { value: 7200, context, measurand: "Power.Active.Import" },
      ],
    },
  ];
}

async function core16() {
  await call("BootNotification", {
    chargePointVendor: "ocpp-rpc",
    chargePointModel: "strict",
    chargePointSerialNumber: "SN-16",
    firmwareVersion: "1.0",
  });
  await call("Heartbeat", {});
  await call("StatusNotification", {
    connectorId: 1,
    errorCode: "NoError",
    status: "Available",
    timestamp: now(),
  });
  await call("Authorize", { idTag: "TAG16" });
  await call("StatusNotification", {
    connectorId: 1,
    errorCode: "NoError",
    status: "Preparing",
    timestamp: now(1),
  });
  const start = await call("StartTransaction", {
    connectorId: 1,
    idTag: "TAG16",
    meterStart: 1000,
    timestamp: now(2),
  });
  const transactionId = start?.transactionId ?? 0;
  await call("MeterValues", {
    connectorId: 1,
    transactionId,
    meterValue: sampled(1500, "Sample.Periodic"),
  });
  await call("StopTransaction", {
    transactionId,
    idTag: "TAG16",
    meterStop: 2000,
    timestamp: now(60),
    reason: "EVDisconnected",
    transactionData: sampled(2000, "Transaction.End"),
  });
  await call("DataTransfer", { vendorId: "org.example", messageId: "x", data: "y" });
  await call("FirmwareStatusNotification", { status: "Idle" });
  await call("DiagnosticsStatusNotification", { status: "Idle" });
}

async function extra16() {
  // the security extension (OCPP 1.6 Security Whitepaper), whose schemas ocpp-rpc ships for 1.6
  await call("SecurityEventNotification", {
    type: "SettingSystemTime",
    timestamp: now(),
    techInfo: "ntp",
  });
  await call("LogStatusNotification", { status: "Uploaded", requestId: 7 });
  await call("SignedFirmwareStatusNotification", { status: "Installed", requestId: 8 });
  await call("SignCertificate", {
    csr: "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----",
  });
}

async function core201() {
  await call("BootNotification", {
    reason: "PowerUp",
    chargingStation: {
      vendorName: "ocpp-rpc",
      model: "strict",
      serialNumber: "SN-201",
      firmwareVersion: "1.0",
    },
  });
  await call("Heartbeat", {});
  await call("StatusNotification", {
    timestamp: now(),
    connectorStatus: "Available",
    evseId: 1,
    connectorId: 1,
  });
  await call("Authorize", { idToken: { idToken: "TAG201", type: "ISO14443" } });
  const tx = { transactionId: "RPC-TX-1" };
  await call("TransactionEvent", {
    eventType: "Started",
    timestamp: now(1),
    triggerReason: "Authorized",
    seqNo: 0,
    transactionInfo: { ...tx, chargingState: "EVConnected" },
    evse: { id: 1, connectorId: 1 },
    idToken: { idToken: "TAG201", type: "ISO14443" },
    meterValue: sampled201(1000, "Transaction.Begin"),
  });
  await call("StatusNotification", {
    timestamp: now(2),
    connectorStatus: "Occupied",
    evseId: 1,
    connectorId: 1,
  });
  await call("TransactionEvent", {
    eventType: "Updated",
    timestamp: now(30),
    triggerReason: "MeterValuePeriodic",
    seqNo: 1,
    transactionInfo: { ...tx, chargingState: "Charging" },
    meterValue: sampled201(1500, "Sample.Periodic"),
  });
  await call("MeterValues", { evseId: 1, meterValue: sampled201(1600, "Sample.Periodic") });
  await call("TransactionEvent", {
    eventType: "Ended",
    timestamp: now(60),
    triggerReason: "EVDeparted",
    seqNo: 2,
    transactionInfo: { ...tx, chargingState: "Idle", stoppedReason: "EVDisconnected" },
    meterValue: sampled201(2000, "Transaction.End"),
  });
  await call("NotifyEvent", {
    generatedAt: now(61),
    seqNo: 0,
    eventData: [
      {
        eventId: 1,
        timestamp: now(61),
        trigger: "Delta",
        actualValue: "Available",
        eventNotificationType: "HardWiredNotification",
        component: { name: "Connector", evse: { id: 1, connectorId: 1 } },
        variable: { name: "AvailabilityState" },
      },
    ],
  });
  await call("SecurityEventNotification", {
    type: "SettingSystemTime",
    timestamp: now(62),
    techInfo: "ntp",
  });
  await call("DataTransfer", { vendorId: "org.example", messageId: "x", data: "y" });
  await call("FirmwareStatusNotification", { status: "Idle" });
}

async function extra201() {
  await call("NotifyReport", {
    requestId: 1,
    generatedAt: now(),
    seqNo: 0,
    tbc: false,
    reportData: [
      {
        component: { name: "SecurityCtrlr" },
        variable: { name: "SecurityProfile" },
        variableAttribute: [{ type: "Actual", value: "1", mutability: "ReadOnly" }],
        variableCharacteristics: { dataType: "integer", supportsMonitoring: false },
      },
    ],
  });
  await call("LogStatusNotification", { status: "Uploaded", requestId: 2 });
  await call("ClearedChargingLimit", { chargingLimitSource: "EMS", evseId: 1 });
  await call("ReservationStatusUpdate", { reservationId: 3, reservationUpdateStatus: "Expired" });
  await call("NotifyEVChargingNeeds", {
    evseId: 1,
    maxScheduleTuples: 3,
    chargingNeeds: {
      requestedEnergyTransfer: "AC_three_phase",
      departureTime: now(3600),
      acChargingParameters: {
        energyAmount: 20000,
        evMinCurrent: 6,
        evMaxCurrent: 32,
        evMaxVoltage: 400,
      },
    },
  });
}

const plans = {
  "1.6": { core: core16, extra: extra16 },
  "2.0.1": { core: core201, extra: extra201 },
};

let exitCode = 0;
try {
  await client.connect();
  if (client.protocol !== `ocpp${version}`) {
    throw new Error(`negotiated ${client.protocol}, wanted ocpp${version}`);
  }
  await plans[version][group]();
} catch (e) {
  console.log(JSON.stringify({ fatal: String(e?.message ?? e) }));
  exitCode = 1;
} finally {
  // a short wait so a CALL the collector sends after our last answer is still seen
  await new Promise((r) => setTimeout(r, 100));
  console.log(
    JSON.stringify({
      summary: {
        protocol: client.protocol,
        calls: results.length,
        failed: results.filter((r) => !r.ok).length,
        strictFailures,
        callsReceived,
      },
    }),
  );
  await client.close({ code: 1000, awaitPending: true }).catch(() => {});
}
process.exit(exitCode);
