"""Carrier SIP trunks as data (issue #19): `ivr trunk`, generated pjsip objects, a reload."""
