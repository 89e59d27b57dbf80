"""python-dbusmock template: ModemManager as its source behaves, with one or more modems and their eUICCs.

Loaded by ``python3 -m dbusmock --session --template THIS_FILE -p JSON`` on the test's private bus.
When the installed python-dbusmock ships its own ``modemmanager`` template it is loaded first and
extended; Debian 12's 0.28.7 does not, so the main object is set up here the same way.

What it models, and where in ModemManager's source that behaviour comes from:

* **Re-announced texts** (``mm-iface-modem-messaging.c`` enabling step LOAD_INITIAL_SMS_PARTS,
  ``mm-sms-list.c`` ``_add_sms_internal``): texts live in the modem's storage (ME, so they survive a SIM
  slot switch); every enable builds a new SMS list, creates a new Sms object (a new path) for each
  stored text and emits ``Messaging.Added(path, true)``. Disabling drops the list (its objects vanish).
* **Wrong state** (``mm_iface_modem_abort_invocation_if_state_not_reached``): a disabled or locked
  modem keeps its Messaging and Ussd interfaces; List/Create/Initiate answer
  ``org.freedesktop.ModemManager1.Error.Core.WrongState`` below ``enabled`` (Delete below ``disabling``).
  A failed modem exports only the Modem interface.
* **Re-probe** (``mm-iface-modem.c`` set_primary_sim_slot, ``mm-device.c`` reprobe, ``Modem.Reset``): after
  a slot switch or a reset the modem object is removed and recreated under a new number, *disabled*,
  with no bearer: ModemManager enables nothing by itself (a connection manager or the user does).
* **Simple.Connect** (``mm-iface-modem-simple.c``): enables a disabled modem, then creates and connects
  a bearer on the modem's net port with the APN given.
* **polkit** (``mm-auth-provider-polkit.c``): send/delete texts (``...Messaging``), USSD (``...USSD``),
  Enable/Reset/SetPrimarySimSlot/Simple.Connect (``...Device.Control``) are allowed for root only here
  (the caller's uid from the bus, as polkit sees it for an inactive session); others get
  ``Error.Core.Unauthorized`` "PolicyKit authorization failed: not authorized for '<action>'".
* **The eUICC** (state shared with the lpac stand-in, ``tests/modem/fake_lpac.py``): a slot may hold an
  eUICC with profiles. ``Lpac*`` mock methods are what lpac's APDU backends do to the modem: the QMI
  backend selects the physical slot ``LPAC_APDU_QMI_UIM_SLOT`` whenever it differs (lpac
  ``driver/apdu/qmi.c`` select_sim_slot), which ModemManager sees as a SIM change (a re-probe);
  ``profile enable`` without the refresh flag (lpac ``src/applet/profile/enable.c``, ES10c
  ``refreshFlag``) changes the eUICC only: the modem keeps reading the old ICCID until it is reset.
  With refresh, a modem that supports the REFRESH proactive command re-reads the SIM (a re-probe).

Test-only controls are on the main object's mock interface; their first argument names the modem by
its position in the ``modems`` parameter where there can be more than one.
"""

import dbus
import dbus.service
from dbusmock import MOCK_IFACE, mockobject
from gi.repository import GLib

BUS_NAME = "org.freedesktop.ModemManager1"
MAIN_OBJ = "/org/freedesktop/ModemManager1"
MAIN_IFACE = "org.freedesktop.ModemManager1"
SYSTEM_BUS = True
IS_OBJECT_MANAGER = False

OM = "org.freedesktop.DBus.ObjectManager"
IF_MODEM = "org.freedesktop.ModemManager1.Modem"
IF_SIMPLE = IF_MODEM + ".Simple"
IF_3GPP = IF_MODEM + ".Modem3gpp"
IF_USSD = IF_3GPP + ".Ussd"
IF_MESSAGING = IF_MODEM + ".Messaging"
IF_SIM = "org.freedesktop.ModemManager1.Sim"
IF_BEARER = "org.freedesktop.ModemManager1.Bearer"
IF_SMS = "org.freedesktop.ModemManager1.Sms"
ERR_CORE = "org.freedesktop.ModemManager1.Error.Core."
AUTH_DEVICE = "org.freedesktop.ModemManager1.Device.Control"
AUTH_MESSAGING = "org.freedesktop.ModemManager1.Messaging"
AUTH_USSD = "org.freedesktop.ModemManager1.USSD"
# MMModemState
FAILED, LOCKED, DISABLED, DISABLING, ENABLING, ENABLED, REGISTERED, CONNECTED = -1, 2, 3, 4, 5, 6, 8, 11
STATES = {"failed": FAILED, "locked": LOCKED, "disabled": DISABLED, "enabled": ENABLED,
          "registered": REGISTERED, "connected": CONNECTED}
STORAGE_ME = 2  # MMSmsStorage: texts kept in the modem's memory (they outlive a SIM switch)
PORT_TYPES = {"qmi": 6, "mbim": 7, "at": 3}  # MMModemPortType
EID = "89049032000000000000000000000001"

_MAIN: list = []  # the main mock object; during load() it is not yet in mockobject.objects


def _error(kind, text):
    return dbus.exceptions.DBusException(text, name=ERR_CORE + kind)


def load(mock, parameters):
    _MAIN[:] = [mock]
    try:  # newer python-dbusmock ships a base template: reuse its main object
        from dbusmock.templates import modemmanager as base

        base.load(mock, parameters)
    except ImportError:
        mock.AddMethods(MAIN_IFACE, [("ScanDevices", "", "", "")])
        mock.AddProperties(MAIN_IFACE, {"Version": "1.20.4"})
    # Like the real daemon, only modems are managed objects; SIMs, bearers and texts are plain objects.
    mock.AddMethod(OM, "GetManagedObjects", "", "a{oa{sa{sv}}}",
                   "ret = {dbus.ObjectPath(k): objects[k].props for k in objects "
                   "if 'org.freedesktop.ModemManager1.Modem' in objects[k].props}")
    mock.mm = {"modem_n": 0, "sim_n": 0, "bearer_n": 0, "sms_n": 0, "sent": [], "modems": [],
               "ussd_reply": str(parameters.get("ussd_reply", "Balance: used 1.5 GB, remaining 8.5 GB"))}
    specs = parameters.get("modems") or [parameters]
    for n, spec in enumerate(specs):
        mock.mm["modems"].append(_modem_state(n, spec))
    for m in mock.mm["modems"]:
        _publish(mock, m)


def _modem_state(n, spec):
    """One modem's lasting state (what survives re-probes): slots, eUICC, stored texts, state."""
    iccid1 = str(spec.get("iccid1", f"8986000000000000{n}011"))
    iccid2 = str(spec.get("iccid2", f"8986000000000000{n}022"))
    profiles = spec.get("profiles") or [
        {"iccid": iccid2, "provider": "China Unicom", "name": "CU eSIM"},
        {"iccid": str(spec.get("iccid3", f"8986000000000000{n}033")), "provider": "Travel eSIM",
         "name": "Roam 10GB"}]
    esim = {"kind": "esim", "eid": str(spec.get("eid", EID[:-1] + str(n + 1))),
            "profiles": [dict(p) for p in profiles], "enabled": profiles[0]["iccid"]}
    esim["seen"] = esim["enabled"]  # the ICCID the modem read from the eUICC last time it looked
    return {
        "n": n, "device_id": str(spec.get("device_id", f"c0ffee00000000000000000000000000000000{n + 1:02d}")),
        "interface": str(spec.get("interface", f"wwan{n}")),
        "control": str(spec.get("control", f"cdc-wdm{n}")), "port_kind": str(spec.get("port_kind", "qmi")),
        "imei": str(spec.get("imei", f"86123405000000{n + 1}")),
        "slots": [{"kind": "physical", "iccid": iccid1}, esim],
        "primary": int(spec.get("primary", 1)),
        "state": STATES[str(spec.get("state", "connected"))],
        "apn": str(spec.get("apn", "cmnet")),
        "refresh": bool(spec.get("refresh", False)),  # the modem acts on the eUICC's REFRESH
        "reset_applies": bool(spec.get("reset_applies", True)),  # a reset makes it re-read the eUICC
        "mm_eid": str(spec.get("mm_eid", "")),  # the Eid ModemManager shows, when not the eUICC's own (a test
        #                                         of lpac reaching another eUICC than the modem's)
        "storage": [],  # stored received texts: {"number", "text", "timestamp"}
        "path": None, "sims": [], "bearer": None, "sms": {}, "rx": 0, "tx": 0, "connects": [],
    }


def _main():
    return _MAIN[0]


def _modem(n):
    return _main().mm["modems"][int(n)]


def _update(obj, iface, changed):
    """UpdateProperties without 0.28.7's re-wrapping, which fails on dictionary values."""
    obj.props[iface].update(changed)
    obj.EmitSignal("org.freedesktop.DBus.Properties", "PropertiesChanged", "sa{sv}as",
                   [iface, dbus.Dictionary(changed, signature="sv"), dbus.Array([], signature="s")])


def _caller_is_root(sender):
    return dbus.SessionBus().get_unix_user(sender) == 0


def _authorize(sender, action):
    """polkit's answer for a caller in no active local session: root yes, anyone else no."""
    if not _caller_is_root(sender):
        raise _error("Unauthorized", f"PolicyKit authorization failed: not authorized for '{action}'")


def _require_state(m, minimum):
    if m["state"] < minimum:
        name = {v: k for k, v in STATES.items()}.get(m["state"], str(m["state"]))
        raise _error("WrongState", f"modem in {name} state")


def _method(obj, iface, name, in_sig, out_sig, fn):
    """A method that learns its caller (for polkit), which dbusmock's AddMethod cannot give."""
    wrapped = dbus.service.method(iface, in_signature=in_sig, out_signature=out_sig, sender_keyword="sender")(fn)
    obj.methods.setdefault(iface, {})[name] = (in_sig, out_sig, "", wrapped)


def _modem_of(obj):
    return next(m for m in _main().mm["modems"] if m["path"] == obj.path)


# -- publishing a modem (initialisation) and re-probing it ----------------------------------------


def _active_iccid(m):
    slot = m["slots"][m["primary"] - 1]
    return slot["iccid"] if slot["kind"] == "physical" else slot["seen"]


def _publish(mock, m):
    st = mock.mm
    path = f"{MAIN_OBJ}/Modem/{st['modem_n']}"
    st["modem_n"] += 1
    m["path"], m["sims"], m["sms"] = path, [], {}
    for number, slot in enumerate(m["slots"], start=1):
        sim_path = f"{MAIN_OBJ}/SIM/{st['sim_n']}"
        st["sim_n"] += 1
        esim = slot["kind"] == "esim"
        iccid = slot["seen"] if esim else slot["iccid"]
        mock.AddObject(sim_path, IF_SIM, {
            "Active": dbus.Boolean(number == m["primary"]), "SimIdentifier": iccid,
            "Imsi": f"46000{iccid[-10:]}", "Eid": (m["mm_eid"] or slot["eid"]) if esim else "",
            "OperatorIdentifier": "46000", "OperatorName": "China Unicom" if esim else "China Mobile",
            "SimType": dbus.UInt32(2 if esim else 1), "EsimStatus": dbus.UInt32(2 if esim else 0),
        }, [])
        m["sims"].append(sim_path)
    bearers = []
    if m["state"] == CONNECTED:
        bearers = [_new_bearer(mock, m, m["apn"])]
    ports = [(m["control"], dbus.UInt32(PORT_TYPES[m["port_kind"]])), (m["interface"], dbus.UInt32(2))]
    if m["port_kind"] != "at":
        ports.append((f"ttyUSB{2 + 4 * m['n']}", dbus.UInt32(3)))
    mock.AddObject(path, IF_MODEM, {
        "Sim": dbus.ObjectPath(m["sims"][m["primary"] - 1]),
        "SimSlots": dbus.Array([dbus.ObjectPath(s) for s in m["sims"]], signature="o"),
        "PrimarySimSlot": dbus.UInt32(m["primary"]),
        "Bearers": dbus.Array([dbus.ObjectPath(b) for b in bearers], signature="o"),
        "Manufacturer": "Quectel", "Model": "EM12-G", "EquipmentIdentifier": m["imei"],
        "DeviceIdentifier": m["device_id"], "State": dbus.Int32(m["state"]),
        "StateFailedReason": dbus.UInt32(2 if m["state"] == FAILED else 0),
        "Ports": dbus.Array(ports, signature="(su)"),
    }, [])
    modem = mockobject.objects[path]
    _method(modem, IF_MODEM, "SetPrimarySimSlot", "u", "", _set_primary_slot)
    _method(modem, IF_MODEM, "Enable", "b", "", _enable)
    _method(modem, IF_MODEM, "Reset", "", "", _reset)
    if m["state"] != FAILED:  # a failed modem never gets past the Modem interface
        modem.AddProperties(IF_3GPP, {"Imei": m["imei"], "OperatorName": "CMCC", "OperatorCode": "46000"})
        modem.AddProperties(IF_USSD, {"State": dbus.UInt32(1), "NetworkNotification": "",
                                      "NetworkRequest": ""})
        _method(modem, IF_USSD, "Initiate", "s", "s", _ussd_initiate)
        _method(modem, IF_USSD, "Cancel", "", "", _ussd_cancel)
        modem.AddProperties(IF_MESSAGING, {"Messages": dbus.Array([], signature="o"),
                                           "SupportedStorages": dbus.Array([dbus.UInt32(1), dbus.UInt32(2)],
                                                                           signature="u"),
                                           "DefaultStorage": dbus.UInt32(STORAGE_ME)})
        _method(modem, IF_MESSAGING, "List", "", "ao", _messaging_list)
        _method(modem, IF_MESSAGING, "Create", "a{sv}", "o", _messaging_create)
        _method(modem, IF_MESSAGING, "Delete", "o", "", _messaging_delete)
        modem.AddProperties(IF_SIMPLE, {})
        _method(modem, IF_SIMPLE, "Connect", "a{sv}", "o", _simple_connect)
        _method(modem, IF_SIMPLE, "Disconnect", "o", "", _simple_disconnect)
    _main().EmitSignal(OM, "InterfacesAdded", "oa{sa{sv}}", [dbus.ObjectPath(path), modem.props])
    if m["state"] >= ENABLED:
        _load_stored(mock, m)


def _unpublish(mock, m):
    path = m["path"]
    ifaces = list(mockobject.objects[path].props.keys())
    for child in [*m["sms"], *m["sims"], *([m["bearer"]] if m["bearer"] else []), path]:
        mock.RemoveObject(child)
    m["sms"], m["sims"], m["bearer"], m["path"] = {}, [], None, None
    _main().EmitSignal(OM, "InterfacesRemoved", "oas", [dbus.ObjectPath(path), dbus.Array(ifaces, "s")])


def _reprobe(m, slot=None):
    """The modem goes away and comes back under a new path: disabled, no bearer, the SIM read again."""
    mock = _main()
    _unpublish(mock, m)
    if slot is not None:
        m["primary"] = slot
    active = m["slots"][m["primary"] - 1]
    if active["kind"] == "esim" and not active.get("stuck"):
        active["seen"] = active["enabled"]  # a reset (or REFRESH) makes the modem read the eUICC again
    m["state"] = DISABLED if m["state"] != FAILED else FAILED
    _publish(mock, m)
    return False


def _set_state(m, state):
    m["state"] = state
    _update(mockobject.objects[m["path"]], IF_MODEM, {"State": dbus.Int32(state)})


def _new_bearer(mock, m, apn):
    st = mock.mm
    bearer = f"{MAIN_OBJ}/Bearer/{st['bearer_n']}"
    st["bearer_n"] += 1
    mock.AddObject(bearer, IF_BEARER, {
        "Interface": m["interface"], "Connected": True, "Suspended": False,
        "Stats": dbus.Dictionary({"rx-bytes": dbus.UInt64(m["rx"]), "tx-bytes": dbus.UInt64(m["tx"]),
                                  "duration": dbus.UInt32(60)}, signature="sv"),
        "Properties": dbus.Dictionary({"apn": apn}, signature="sv"),
    }, [])
    m["bearer"] = bearer
    return bearer


def _load_stored(mock, m):
    """Enabling step LOAD_INITIAL_SMS_PARTS: every stored text becomes a new Sms object, announced."""
    modem = mockobject.objects[m["path"]]
    for stored in m["storage"]:
        sms = _new_sms(mock, m, stored, 3)
        modem.EmitSignal(IF_MESSAGING, "Added", "ob", [dbus.ObjectPath(sms), True])


def _do_enable(m):
    mock = _main()
    if m["state"] >= ENABLED:
        return
    _set_state(m, ENABLING)
    _load_stored(mock, m)  # Added is emitted before the modem reaches "enabled", as in the real daemon
    _set_state(m, REGISTERED)


def _do_disable(m):
    mock = _main()
    if m["state"] < ENABLED:
        return
    modem = mockobject.objects[m["path"]]
    _set_state(m, DISABLING)
    if m["bearer"]:
        _update(mockobject.objects[m["bearer"]], IF_BEARER, {"Connected": False})
    for sms in list(m["sms"]):  # the SMS list is dropped; its objects are no longer exported
        mock.RemoveObject(sms)
    m["sms"] = {}
    _update(modem, IF_MESSAGING, {"Messages": dbus.Array([], signature="o")})
    _set_state(m, DISABLED)


# -- Modem methods --------------------------------------------------------------------------------


def _set_primary_slot(self, slot, sender=None):
    _authorize(sender, AUTH_DEVICE)
    m = _modem_of(self)
    if not 1 <= slot <= len(m["slots"]):
        raise _error("Failed", f"invalid slot {slot}")
    if slot == m["primary"]:
        return
    GLib.idle_add(_reprobe, m, slot)  # after the reply, as ModemManager re-probes asynchronously


def _enable(self, enable, sender=None):
    _authorize(sender, AUTH_DEVICE)
    m = _modem_of(self)
    if m["state"] in (FAILED, LOCKED):
        raise _error("WrongState", "modem in locked state" if m["state"] == LOCKED else "modem in failed state")
    _do_enable(m) if enable else _do_disable(m)


def _reset(self, sender=None):
    _authorize(sender, AUTH_DEVICE)
    GLib.idle_add(_reprobe, _modem_of(self))


def _simple_connect(self, props, sender=None):
    _authorize(sender, AUTH_DEVICE)
    m = _modem_of(self)
    if m["state"] in (FAILED, LOCKED):
        raise _error("WrongState", "modem in locked state" if m["state"] == LOCKED else "modem in failed state")
    _do_enable(m)
    apn = str(props.get("apn", m["apn"]))
    m["connects"].append(apn)
    mock = _main()
    if m["bearer"]:
        mock.RemoveObject(m["bearer"])
    bearer = _new_bearer(mock, m, apn)
    modem = mockobject.objects[m["path"]]
    _update(modem, IF_MODEM, {"Bearers": dbus.Array([dbus.ObjectPath(bearer)], signature="o")})
    _set_state(m, CONNECTED)
    return dbus.ObjectPath(bearer)


def _simple_disconnect(self, bearer, sender=None):
    _authorize(sender, AUTH_DEVICE)
    m = _modem_of(self)
    if m["bearer"]:
        _update(mockobject.objects[m["bearer"]], IF_BEARER, {"Connected": False})
    _set_state(m, REGISTERED)


def _ussd_initiate(self, command, sender=None):
    _authorize(sender, AUTH_USSD)
    _require_state(_modem_of(self), ENABLED)
    mock = _main()
    mock.mm["sent"].append(("ussd", str(command)))
    return mock.mm["ussd_reply"]


def _ussd_cancel(self, sender=None):
    _authorize(sender, AUTH_USSD)
    _require_state(_modem_of(self), ENABLED)


# -- texts ----------------------------------------------------------------------------------------


def _new_sms(mock, m, stored, state):
    st = mock.mm
    sms = f"{MAIN_OBJ}/SMS/{st['sms_n']}"
    st["sms_n"] += 1
    mock.AddObject(sms, IF_SMS, {
        "Number": stored["number"], "Text": stored["text"], "State": dbus.UInt32(state),
        "Timestamp": stored["timestamp"], "Storage": dbus.UInt32(STORAGE_ME if stored.get("kept", True) else 0),
        "PduType": dbus.UInt32(1 if state != 0 else 3),
    }, [])
    obj = mockobject.objects[sms]
    _method(obj, IF_SMS, "Send", "", "", _sms_send)
    _method(obj, IF_SMS, "Store", "u", "", _sms_store)
    m["sms"][sms] = stored
    modem = mockobject.objects[m["path"]]
    msgs = [*modem.props[IF_MESSAGING]["Messages"], dbus.ObjectPath(sms)]
    _update(modem, IF_MESSAGING, {"Messages": dbus.Array(msgs, signature="o")})
    return sms


def _messaging_list(self, sender=None):
    m = _modem_of(self)
    _require_state(m, ENABLED)
    return dbus.Array(self.props[IF_MESSAGING]["Messages"], signature="o")


def _messaging_create(self, props, sender=None):
    _authorize(sender, AUTH_MESSAGING)
    m = _modem_of(self)
    _require_state(m, ENABLED)
    stored = {"number": str(props.get("number", "")), "text": str(props.get("text", "")), "timestamp": "",
              "kept": False}
    sms = _new_sms(_main(), m, stored, 0)
    self.EmitSignal(IF_MESSAGING, "Added", "ob", [dbus.ObjectPath(sms), False])
    return dbus.ObjectPath(sms)


def _messaging_delete(self, sms, sender=None):
    _authorize(sender, AUTH_MESSAGING)
    m = _modem_of(self)
    _require_state(m, DISABLING)
    if sms not in m["sms"]:
        raise _error("NotFound", f"no SMS found with path '{sms}'")
    stored = m["sms"].pop(sms)
    if stored in m["storage"]:
        m["storage"].remove(stored)
    msgs = [p for p in self.props[IF_MESSAGING]["Messages"] if p != sms]
    _update(self, IF_MESSAGING, {"Messages": dbus.Array(msgs, signature="o")})
    _main().RemoveObject(sms)
    self.EmitSignal(IF_MESSAGING, "Deleted", "o", [dbus.ObjectPath(sms)])


def _sms_send(self, sender=None):
    _authorize(sender, AUTH_MESSAGING)
    mock = _main()
    props = self.props[IF_SMS]
    if props["State"] != 0:
        raise _error("Failed", "already sent")
    mock.mm["sent"].append((str(props["Number"]), str(props["Text"])))
    _update(self, IF_SMS, {"State": dbus.UInt32(5)})


def _sms_store(self, storage, sender=None):
    _authorize(sender, AUTH_MESSAGING)


def _receive(n, number, text, timestamp, state):
    m = _modem(n)
    _require_state(m, ENABLED)  # a modem that is not enabled is not registered: nothing arrives
    stored = {"number": str(number), "text": str(text), "timestamp": str(timestamp)}
    m["storage"].append(stored)
    sms = _new_sms(_main(), m, stored, state)
    mockobject.objects[m["path"]].EmitSignal(IF_MESSAGING, "Added", "ob", [dbus.ObjectPath(sms), True])
    return sms


# -- test controls --------------------------------------------------------------------------------


@dbus.service.method(MOCK_IFACE, in_signature="sss", out_signature="s")
def ReceiveSms(self, number, text, timestamp):
    """A complete text arrives on the first modem from ``number``; it is stored (ME) and announced."""
    return _receive(0, number, text, timestamp, 3)


@dbus.service.method(MOCK_IFACE, in_signature="usss", out_signature="s")
def ReceiveSmsOn(self, n, number, text, timestamp):
    """A complete text arrives on modem ``n``."""
    return _receive(n, number, text, timestamp, 3)


@dbus.service.method(MOCK_IFACE, in_signature="sss", out_signature="s")
def ReceiveSmsPartial(self, number, text, timestamp):
    """A text starts arriving (State receiving); CompleteSms finishes it."""
    return _receive(0, number, text, timestamp, 2)


@dbus.service.method(MOCK_IFACE, in_signature="s", out_signature="")
def CompleteSms(self, sms):
    _update(mockobject.objects[sms], IF_SMS, {"State": dbus.UInt32(3)})


@dbus.service.method(MOCK_IFACE, in_signature="u", out_signature="u")
def StoredCount(self, n):
    """How many received texts modem ``n`` keeps in its storage."""
    return len(_modem(n)["storage"])


@dbus.service.method(MOCK_IFACE, in_signature="", out_signature="a(ss)")
def GetSent(self):
    """Every text and USSD code the modem sent, oldest first: (number or "ussd", text)."""
    return dbus.Array(self.mm["sent"], signature="(ss)")


@dbus.service.method(MOCK_IFACE, in_signature="u", out_signature="as")
def GetConnects(self, n):
    """The APN of every Simple.Connect on modem ``n``, oldest first."""
    return dbus.Array(_modem(n)["connects"], signature="s")


@dbus.service.method(MOCK_IFACE, in_signature="tt", out_signature="")
def SetBearerStats(self, rx, tx):
    m = _modem(0)
    m["rx"], m["tx"] = rx, tx
    if m["bearer"]:
        _update(mockobject.objects[m["bearer"]], IF_BEARER, {"Stats": dbus.Dictionary(
            {"rx-bytes": dbus.UInt64(rx), "tx-bytes": dbus.UInt64(tx), "duration": dbus.UInt32(60)},
            signature="sv")})


@dbus.service.method(MOCK_IFACE, in_signature="s", out_signature="")
def UssdNotify(self, text):
    """The network pushes a USSD message (NetworkNotification changes)."""
    _update(mockobject.objects[_modem(0)["path"]], IF_USSD, {"NetworkNotification": text})


@dbus.service.method(MOCK_IFACE, in_signature="b", out_signature="")
def SetEnabled(self, enabled):
    """What a connection manager (or `mmcli -e/-d`) does to the first modem: enable or disable it."""
    _do_enable(_modem(0)) if enabled else _do_disable(_modem(0))


@dbus.service.method(MOCK_IFACE, in_signature="ub", out_signature="")
def SetEnabledOn(self, n, enabled):
    _do_enable(_modem(n)) if enabled else _do_disable(_modem(n))


# -- what lpac's APDU backends do to the modem (called by tests/modem/fake_lpac.py) ---------------


def _by_control(device):
    name = str(device).rsplit("/", 1)[-1]
    for m in _main().mm["modems"]:
        if m["path"] and m["control"] == name:
            return m
    raise _error("NotFound", f"cannot open {device}: no such device")


@dbus.service.method(MOCK_IFACE, in_signature="ssub", out_signature="u")
def LpacOpen(self, backend, device, uim_slot, proxy):
    """lpac's APDU driver opens ``device``; returns the modem number.

    QMI (driver/apdu/qmi.c select_sim_slot; mbim.c does the same with slot mappings): when the active
    physical slot is not ``uim_slot`` the
    driver switches to it; ModemManager sees its SIM change and re-probes the modem. MBIM without the
    proxy cannot open a port ModemManager holds.
    """
    m = _by_control(device)
    if backend != m["port_kind"]:
        raise _error("Failed", f"{device} does not speak {backend}")
    if backend == "mbim" and not proxy:
        raise _error("Failed", f"cannot open {device}: device busy (ModemManager holds it; use mbim-proxy)")
    if not 1 <= uim_slot <= len(m["slots"]):
        raise _error("Failed", f"switch slot operation failed: invalid physical slot {uim_slot}")
    if uim_slot != m["primary"]:  # QMI select_sim_slot; MBIM device slot mappings likewise
        m["lpac_switches"] = m.get("lpac_switches", 0) + 1
        _reprobe(m, uim_slot)  # the SIM changed under ModemManager: it re-probes the modem
    return m["n"]


def _euicc(m):
    slot = m["slots"][m["primary"] - 1]
    if slot["kind"] != "esim":
        raise _error("Failed", "euicc_init: the card in the selected slot is not an eUICC")
    return slot


@dbus.service.method(MOCK_IFACE, in_signature="u", out_signature="s")
def LpacEid(self, n):
    return _euicc(_modem(n))["eid"]


@dbus.service.method(MOCK_IFACE, in_signature="u", out_signature="a(sss)")
def LpacProfiles(self, n):
    slot = _euicc(_modem(n))
    return dbus.Array([(p["iccid"], "enabled" if p["iccid"] == slot["enabled"] else "disabled",
                        p.get("provider", "")) for p in slot["profiles"]], signature="(sss)")


@dbus.service.method(MOCK_IFACE, in_signature="usb", out_signature="i")
def LpacEnable(self, n, iccid, refresh):
    """ES10c EnableProfile: 0 ok, 1 not found, 2 not in disabled state (lpac enable.c's codes)."""
    m = _modem(n)
    slot = _euicc(m)
    if iccid not in [p["iccid"] for p in slot["profiles"]]:
        return 1
    if slot["enabled"] == iccid:
        return 2
    slot["enabled"] = iccid
    if refresh and m["refresh"]:  # the modem runs the REFRESH: it reads the SIM again
        GLib.idle_add(_reprobe, m)
    elif not m["reset_applies"]:
        slot["stuck"] = True
    return 0


@dbus.service.method(MOCK_IFACE, in_signature="u", out_signature="u")
def LpacSlotSwitches(self, n):
    """How often lpac's QMI backend switched modem ``n``'s physical slot."""
    return _modem(n).get("lpac_switches", 0)

