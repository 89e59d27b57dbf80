"""python-dbusmock template: ModemManager with one dual-SIM modem, Messaging/Sms, USSD and a bearer.

Loaded by ``python3 -m dbusmock --session --template THIS_FILE -p JSON`` on the test's private bus.
When the installed python-dbusmock ships its own ``modemmanager`` template it is loaded first and
extended; Debian 12's 0.28.7 does not, so the main object is set up here the same way.

Like the real daemon, ``SetPrimarySimSlot`` answers, then removes the modem object (and its SIM and
bearer objects) and recreates it under a new number with the other SIM active, emitting
InterfacesRemoved / InterfacesAdded. Test-only controls are on the main object's mock interface.
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
IF_3GPP = IF_MODEM + ".Modem3gpp"
IF_USSD = IF_3GPP + ".Ussd"
IF_MESSAGING = IF_MODEM + ".Messaging"
IF_SIM = "org.freedesktop.ModemManager1.Sim"
IF_BEARER = "org.freedesktop.ModemManager1.Bearer"
IF_SMS = "org.freedesktop.ModemManager1.Sms"
ERR = "org.freedesktop.ModemManager1.Error.Core.Failed"


_MAIN: list = []  # the main mock object; during load() it is not yet in mockobject.objects


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
    mock.mm = {
        "iccids": [str(parameters.get("iccid1", "89860000000000000011")),
                   str(parameters.get("iccid2", "89860000000000000022"))],
        "interface": str(parameters.get("interface", "wwan0")),
        "device_id": str(parameters.get("device_id", "c0ffee0000000000000000000000000000000001")),
        "ussd_reply": str(parameters.get("ussd_reply", "Balance: used 1.5 GB, remaining 8.5 GB")),
        "modem_n": 0, "sim_n": 0, "bearer_n": 0, "sms_n": 0,
        "modem": None, "children": [], "sent": [], "rx": 0, "tx": 0,
    }
    _add_modem(mock, int(parameters.get("primary", 1)))


def _main():
    return _MAIN[0]


def _update(obj, iface, changed):
    """UpdateProperties without 0.28.7's re-wrapping, which fails on dictionary values."""
    obj.props[iface].update(changed)
    obj.EmitSignal("org.freedesktop.DBus.Properties", "PropertiesChanged", "sa{sv}as",
                   [iface, dbus.Dictionary(changed, signature="sv"), dbus.Array([], signature="s")])


def _emit_added(path):
    _main().EmitSignal(OM, "InterfacesAdded", "oa{sa{sv}}",
                       [dbus.ObjectPath(path), mockobject.objects[path].props])


def _add_modem(mock, primary):
    st = mock.mm
    path = f"{MAIN_OBJ}/Modem/{st['modem_n']}"
    st["modem_n"] += 1
    sims = []
    for slot, iccid in enumerate(st["iccids"], start=1):
        sim_path = f"{MAIN_OBJ}/SIM/{st['sim_n']}"
        st["sim_n"] += 1
        mock.AddObject(sim_path, IF_SIM, {
            "Active": dbus.Boolean(slot == primary),
            "SimIdentifier": iccid,
            "Imsi": f"46000{iccid[-10:]}",
            "Eid": "89049032000000000000000000000001" if slot == 2 else "",
            "OperatorIdentifier": "46000",
            "OperatorName": "China Mobile" if slot == 1 else "China Unicom",
            "SimType": dbus.UInt32(2 if slot == 2 else 1),
            "EsimStatus": dbus.UInt32(2 if slot == 2 else 0),
        }, [])
        sims.append(sim_path)
    bearer = f"{MAIN_OBJ}/Bearer/{st['bearer_n']}"
    st["bearer_n"] += 1
    mock.AddObject(bearer, IF_BEARER, {
        "Interface": st["interface"], "Connected": True, "Suspended": False,
        "Stats": dbus.Dictionary({"rx-bytes": dbus.UInt64(st["rx"]), "tx-bytes": dbus.UInt64(st["tx"]),
                                  "duration": dbus.UInt32(60)}, signature="sv"),
        "Properties": dbus.Dictionary({"apn": "cmnet"}, signature="sv"),
    }, [])
    mock.AddObject(path, IF_MODEM, {
        "Sim": dbus.ObjectPath(sims[primary - 1]),
        "SimSlots": dbus.Array([dbus.ObjectPath(s) for s in sims], signature="o"),
        "PrimarySimSlot": dbus.UInt32(primary),
        "Bearers": dbus.Array([dbus.ObjectPath(bearer)], signature="o"),
        "Manufacturer": "Quectel", "Model": "EM12-G", "EquipmentIdentifier": "861234050000001",
        "DeviceIdentifier": st["device_id"], "State": dbus.Int32(11),
        "Ports": dbus.Array([("cdc-wdm0", dbus.UInt32(6)), (st["interface"], dbus.UInt32(2))],
                            signature="(su)"),
    }, [("SetPrimarySimSlot", "u", "", _set_primary_slot)])
    modem = mockobject.objects[path]
    modem.AddProperties(IF_3GPP, {"Imei": "861234050000001", "OperatorName": "CMCC",
                                  "OperatorCode": "46000"})
    modem.AddProperties(IF_USSD, {"State": dbus.UInt32(1), "NetworkNotification": "",
                                  "NetworkRequest": ""})
    modem.AddMethods(IF_USSD, [("Initiate", "s", "s", _ussd_initiate), ("Cancel", "", "", "")])
    modem.AddProperties(IF_MESSAGING, {"Messages": dbus.Array([], signature="o"),
                                       "DefaultStorage": dbus.UInt32(2)})
    modem.AddMethods(IF_MESSAGING, [
        ("List", "", "ao", "ret = self.props['org.freedesktop.ModemManager1.Modem.Messaging']['Messages']"),
        ("Create", "a{sv}", "o", _messaging_create),
        ("Delete", "o", "", _messaging_delete),
    ])
    st["modem"] = path
    st["children"] = [*sims, bearer]
    _emit_added(path)


def _remove_modem(mock):
    st = mock.mm
    path = st["modem"]
    ifaces = list(mockobject.objects[path].props.keys())
    for child in [*st["children"], path]:
        mock.RemoveObject(child)
    _main().EmitSignal(OM, "InterfacesRemoved", "oas", [dbus.ObjectPath(path), dbus.Array(ifaces, "s")])
    st["modem"] = None


def _set_primary_slot(self, slot):
    mock = _main()
    if not 1 <= slot <= len(mock.mm["iccids"]):
        raise dbus.exceptions.DBusException(f"invalid slot {slot}", name=ERR)

    def reprobe():
        _remove_modem(mock)
        _add_modem(mock, slot)
        return False

    GLib.idle_add(reprobe)  # after the reply, as ModemManager re-probes asynchronously


def _ussd_initiate(self, command):
    mock = _main()
    mock.mm["sent"].append(("ussd", str(command)))
    return mock.mm["ussd_reply"]


def _new_sms(mock, modem, props):
    st = mock.mm
    sms = f"{MAIN_OBJ}/SMS/{st['sms_n']}"
    st["sms_n"] += 1
    mock.AddObject(sms, IF_SMS, props, [("Send", "", "", _sms_send), ("Store", "u", "", "")])
    msgs = [*modem.props[IF_MESSAGING]["Messages"], dbus.ObjectPath(sms)]
    _update(modem, IF_MESSAGING, {"Messages": dbus.Array(msgs, signature="o")})
    return sms


def _messaging_create(self, props):
    sms = _new_sms(_main(), self, {"Number": str(props.get("number", "")),
                                   "Text": str(props.get("text", "")),
                                   "State": dbus.UInt32(0), "Timestamp": ""})
    self.EmitSignal(IF_MESSAGING, "Added", "ob", [dbus.ObjectPath(sms), False])
    return dbus.ObjectPath(sms)


def _messaging_delete(self, sms):
    msgs = [m for m in self.props[IF_MESSAGING]["Messages"] if m != sms]
    _update(self, IF_MESSAGING, {"Messages": dbus.Array(msgs, signature="o")})
    _main().RemoveObject(sms)


def _sms_send(self):
    mock = _main()
    props = self.props[IF_SMS]
    if props["State"] != 0:
        raise dbus.exceptions.DBusException("already sent", name=ERR)
    mock.mm["sent"].append((str(props["Number"]), str(props["Text"])))
    _update(self, IF_SMS, {"State": dbus.UInt32(5)})


def _receive(self, number, text, timestamp, state):
    modem = mockobject.objects[self.mm["modem"]]
    sms = _new_sms(self, modem, {"Number": number, "Text": text, "State": dbus.UInt32(state),
                                 "Timestamp": timestamp})
    modem.EmitSignal(IF_MESSAGING, "Added", "ob", [dbus.ObjectPath(sms), True])
    return sms


@dbus.service.method(MOCK_IFACE, in_signature="sss", out_signature="s")
def ReceiveSms(self, number, text, timestamp):
    """A complete text arrives from ``number``."""
    return _receive(self, number, text, timestamp, 3)


@dbus.service.method(MOCK_IFACE, in_signature="sss", out_signature="s")
def ReceiveSmsPartial(self, number, text, timestamp):
    """A text starts arriving (State receiving); CompleteSms finishes it."""
    return _receive(self, number, text, timestamp, 2)


@dbus.service.method(MOCK_IFACE, in_signature="s", out_signature="")
def CompleteSms(self, sms):
    _update(mockobject.objects[sms], IF_SMS, {"State": dbus.UInt32(3)})


@dbus.service.method(MOCK_IFACE, in_signature="", out_signature="a(ss)")
def GetSent(self):
    """Every text and USSD code the modem sent, oldest first: (number or "ussd", text)."""
    return dbus.Array(self.mm["sent"], signature="(ss)")


@dbus.service.method(MOCK_IFACE, in_signature="tt", out_signature="")
def SetBearerStats(self, rx, tx):
    self.mm["rx"], self.mm["tx"] = rx, tx
    bearer = mockobject.objects[self.mm["children"][-1]]
    _update(bearer, IF_BEARER, {"Stats": dbus.Dictionary(
        {"rx-bytes": dbus.UInt64(rx), "tx-bytes": dbus.UInt64(tx), "duration": dbus.UInt32(60)},
        signature="sv")})


@dbus.service.method(MOCK_IFACE, in_signature="s", out_signature="")
def UssdNotify(self, text):
    """The network pushes a USSD message (NetworkNotification changes)."""
    _update(mockobject.objects[self.mm["modem"]], IF_USSD, {"NetworkNotification": text})


@dbus.service.method(MOCK_IFACE, in_signature="b", out_signature="")
def SetEnabled(self, enabled):
    """Disable (the modem loses Messaging and Ussd, like a disabled modem) or enable it again."""
    modem = mockobject.objects[self.mm["modem"]]
    if enabled:
        self.mm["stash"], stash = {}, self.mm.get("stash", {})
        modem.props.update(stash)
        _main().EmitSignal(OM, "InterfacesAdded", "oa{sa{sv}}", [dbus.ObjectPath(modem.path), stash])
    else:
        stash = {i: modem.props.pop(i) for i in (IF_MESSAGING, IF_USSD)}
        self.mm["stash"] = stash
        _main().EmitSignal(OM, "InterfacesRemoved", "oas",
                           [dbus.ObjectPath(modem.path), dbus.Array(list(stash), "s")])
