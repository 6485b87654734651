"""A stand-in for xdg-desktop-portal's GlobalShortcuts, as the specification
defines it (CreateSession, BindShortcuts, their Request/Response, Activated), on
the test's private session bus. As the spec says, a session's shortcuts are
bound once (a second BindShortcuts on it fails), and a press activates only a
shortcut bound in an open session. The test presses a shortcut with the extra
method org.rmm.FakePortal.Press(id). Run: python fake_portal.py LOGFILE"""

from __future__ import annotations

import json
import sys
import time

from gi.repository import Gio, GLib

XML = """<node>
  <interface name="org.freedesktop.portal.GlobalShortcuts">
    <method name="CreateSession"><arg type="a{sv}" direction="in"/><arg type="o" direction="out"/></method>
    <method name="BindShortcuts"><arg type="o" direction="in"/><arg type="a(sa{sv})" direction="in"/>
      <arg type="s" direction="in"/><arg type="a{sv}" direction="in"/><arg type="o" direction="out"/></method>
    <method name="ListShortcuts"><arg type="o" direction="in"/><arg type="a{sv}" direction="in"/>
      <arg type="o" direction="out"/></method>
    <signal name="Activated"><arg type="o"/><arg type="s"/><arg type="t"/><arg type="a{sv}"/></signal>
    <signal name="Deactivated"><arg type="o"/><arg type="s"/><arg type="t"/><arg type="a{sv}"/></signal>
    <property name="version" type="u" access="read"/>
  </interface>
  <interface name="org.rmm.FakePortal">
    <method name="Press"><arg type="s" direction="in"/></method>
  </interface>
</node>"""
SESSION_XML = """<node><interface name="org.freedesktop.portal.Session">
  <method name="Close"/></interface></node>"""

PATH = "/org/freedesktop/portal/desktop"
log_path = sys.argv[1]
sessions: dict[str, str] = {}  # session path -> the client's unique name
bound_ids: dict[str, set[str]] = {}  # session path -> its bound shortcut ids
bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
node = Gio.DBusNodeInfo.new_for_xml(XML)
session_node = Gio.DBusNodeInfo.new_for_xml(SESSION_XML)


def note(what: str, **data) -> None:
    with open(log_path, "a") as fh:
        fh.write(json.dumps({"call": what, **data}) + "\n")


def request_path(sender: str, token: str) -> str:
    return f"{PATH}/request/{sender.lstrip(':').replace('.', '_')}/{token}"


def respond(sender: str, path: str, results: dict, code: int = 0) -> bool:
    bus.emit_signal(sender, path, "org.freedesktop.portal.Request", "Response",
                    GLib.Variant("(ua{sv})", (code, results)))
    return False


def on_call(conn, sender, path, iface, method, params, invocation):
    if iface == "org.freedesktop.portal.Session":
        note("Close", session=path)
        sessions.pop(path, None)
        bound_ids.pop(path, None)
        invocation.return_value(None)
        return
    if method == "CreateSession":
        options = params.unpack()[0]
        handle = request_path(sender, options["handle_token"])
        session = f"{PATH}/session/{sender.lstrip(':').replace('.', '_')}/{options['session_handle_token']}"
        sessions[session] = sender
        bus.register_object(session, session_node.interfaces[0], on_call, None, None)
        note("CreateSession", session=session)
        invocation.return_value(GLib.Variant("(o)", (handle,)))
        GLib.idle_add(respond, sender, handle, {"session_handle": GLib.Variant("o", session)})
    elif method == "BindShortcuts":
        session, shortcuts, parent, options = params.unpack()
        handle = request_path(sender, options["handle_token"])
        note("BindShortcuts", session=session, shortcuts=shortcuts)
        invocation.return_value(GLib.Variant("(o)", (handle,)))
        if session not in sessions or session in bound_ids:  # once per session, says the spec
            note("BindShortcuts refused", session=session)
            GLib.idle_add(respond, sender, handle, {}, 2)
            return
        bound_ids[session] = {sid for sid, _ in shortcuts}
        bound = [(sid, {"description": GLib.Variant("s", props.get("description", "")),
                        "trigger_description": GLib.Variant("s", f"Press {props.get('preferred_trigger')}")})
                 for sid, props in shortcuts]
        GLib.idle_add(respond, sender, handle, {"shortcuts": GLib.Variant("a(sa{sv})", bound)})
    elif method == "Press":
        shortcut = params.unpack()[0]
        pressed = [(s, c) for s, c in sessions.items() if shortcut in bound_ids.get(s, ())]
        for session, client in pressed:
            bus.emit_signal(client, PATH, "org.freedesktop.portal.GlobalShortcuts", "Activated",
                            GLib.Variant("(osta{sv})", (session, shortcut, int(time.time() * 1000), {})))
        note("Press", shortcut=shortcut, sessions=len(pressed))
        invocation.return_value(None)
    else:
        invocation.return_dbus_error("org.freedesktop.DBus.Error.UnknownMethod", method)


def on_property(conn, sender, path, iface, name):
    return GLib.Variant("u", 1)


for info in node.interfaces:
    bus.register_object(PATH, info, on_call, on_property, None)
bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
              GLib.Variant("(su)", ("org.freedesktop.portal.Desktop", 4)), None,
              Gio.DBusCallFlags.NONE, 5000, None)
note("owned")
GLib.MainLoop().run()
