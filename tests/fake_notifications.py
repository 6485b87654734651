"""A stand-in notification server (org.freedesktop.Notifications, as the Desktop
Notifications specification defines it) on the test's private session bus: each
Notify is written to a JSON-lines file. Run: python fake_notifications.py LOGFILE"""

from __future__ import annotations

import itertools
import json
import sys

from gi.repository import Gio, GLib

XML = """<node><interface name="org.freedesktop.Notifications">
  <method name="Notify">
    <arg type="s" direction="in"/><arg type="u" direction="in"/><arg type="s" direction="in"/>
    <arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="as" direction="in"/>
    <arg type="a{sv}" direction="in"/><arg type="i" direction="in"/><arg type="u" direction="out"/>
  </method>
  <method name="CloseNotification"><arg type="u" direction="in"/></method>
  <method name="GetCapabilities"><arg type="as" direction="out"/></method>
  <method name="GetServerInformation">
    <arg type="s" direction="out"/><arg type="s" direction="out"/><arg type="s" direction="out"/>
    <arg type="s" direction="out"/>
  </method>
  <signal name="NotificationClosed"><arg type="u"/><arg type="u"/></signal>
</interface></node>"""

log_path = sys.argv[1]
ids = itertools.count(1)
bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)


def on_call(conn, sender, path, iface, method, params, invocation):
    if method == "Notify":
        app, _replaces, _icon, summary, body, *_ = params.unpack()
        with open(log_path, "a") as fh:
            fh.write(json.dumps({"app": app, "summary": summary, "body": body}) + "\n")
        invocation.return_value(GLib.Variant("(u)", (next(ids),)))
    elif method == "GetCapabilities":
        invocation.return_value(GLib.Variant("(as)", (["body"],)))
    elif method == "GetServerInformation":
        invocation.return_value(GLib.Variant("(ssss)", ("fake", "rmm-tests", "1", "1.2")))
    else:
        invocation.return_value(None)


bus.register_object("/org/freedesktop/Notifications", Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0],
                    on_call, None, None)
bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
              GLib.Variant("(su)", ("org.freedesktop.Notifications", 4)), None,
              Gio.DBusCallFlags.NONE, 5000, None)
with open(log_path, "a") as fh:
    fh.write(json.dumps({"owned": True}) + "\n")
GLib.MainLoop().run()
