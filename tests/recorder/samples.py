# ruff: noqa: E501 - the samples keep their lines as the seed has them.
"""The seed's sample responses (MyVox Public API 1.11), transcribed. Only PDF-extraction damage
is repaired: `</mp3_u\\n rl>` line breaks, `>>false` doubled brackets, and the GetRecordingList /
StartRecordingSession samples that the extraction split across two blocks."""

CREATE_RECORDING = """<?xml version="1.0" encoding="UTF-8"?>
<MyVoxapi message="New recording 62B3S11LBB created" status="success">
  <voice_recorder_key>AOAIG2UUVO</voice_recorder_key>
  <recording_list_key>WWJKFT0A5V</recording_list_key>
<recording>
  <recording_key>62B3S11LBB</recording_key>
  <recording_state>unrecorded</recording_state>
  <name>My Recording</name>
  <sequence>1</sequence>
  <is_in_session>false</is_in_session>
  <has_wav_file>false</has_wav_file>
  <has_mp3_file>false</has_mp3_file>
  <date_created>2007-12-12 22:32:59 EST</date_created>
  <last_updated>2007-12-12 22:32:59 EST</last_updated>
  <last_accessed>2007-12-12 22:32:59 EST</last_accessed>
</recording>
</MyVoxapi>"""

CREATE_RECORDING_LIST = """<?xml version="1.0" encoding="UTF-8"?>
<MyVoxapi message="New recording list MyCustomKey created"
status="success">
  <voice_recorder_key>AOAIG2UUVO</voice_recorder_key>
  <recording_list>
    <recording_list_key>MyCustomKey</recording_list_key>
    <name>Test Recording List</name>
    <meta_data_1>xxx</meta_data_1>
    <meta_data_2>yyy</meta_data_2>
    <meta_data_3>zzz</meta_data_3>
    <access_protected>false</access_protected>
    <update_protected>false</update_protected>
    <delete_protected>false</delete_protected>
    <recording_count>0</recording_count>
    <max_recordings>5</max_recordings>
    <date_created>2007-12-12 20:21:43 EST</date_created>
    <last_updated>2007-12-12 20:21:43 EST</last_updated>
    <last_accessed>2007-12-12 20:21:43 EST</last_accessed>
  </recording_list>
</MyVoxapi>"""

DELETE_RECORDING = """<MyVoxapi message="Recording KRYQUKAU0G deleted" status="success" />"""

DELETE_RECORDING_LIST = """<MyVoxapi message="Recording list BBBB deleted" status="success"/>"""

EXPIRE_RECORDING_SESSION = """<?xml version="1.0" encoding="UTF-8"?>
<MyVoxapi message="The recording session has been expired and session recordings unlocked" status="success">
  <voice_recorder_key>ZV2ZEXHJ4P</voice_recorder_key>
  <recording_list_key>36PONP0XTR</recording_list_key>
  <recording_session_key>V6GUN79S7T</recording_session_key>
</MyVoxapi>"""

GET_RECORDING = """<?xml version="1.0" encoding="UTF-8"?>
<MyVoxapi message="Recording 62B3S11LBB returned" status="success">
  <voice_recorder_key>AOAIG2UUVO</voice_recorder_key>
  <recording_list_key>WWJKFT0A5V</recording_list_key>
  <recording>
    <recording_key>62B3S11LBB</recording_key>
    <recording_state>recorded</recording_state>
    <name>My Recording</name>
    <sequence>1</sequence>
    <is_in_session>false</is_in_session>
    <play_key>HJ4SF86FE666EL9U73GE</play_key>
    <has_wav_file>false</has_wav_file>
    <has_mp3_file>true</has_mp3_file>
    <mp3_url>http://api.MyVox.com/HJ4SF86FE666EL9U73GE/recording.mp3</mp3_url>
    <date_created>2007-12-12 22:32:59 EST</date_created>
    <last_updated>2007-12-12 22:32:59 EST</last_updated>
    <last_accessed>2007-12-12 22:32:59 EST</last_accessed>
  </recording>
</MyVoxapi>"""

GET_RECORDING_LIST = """<?xml version="1.0" encoding="UTF-8"?>
<MyVoxapi message="Recording list MyCustomKey returned"
status="success">
  <voice_recorder_key>AOAIG2UUVO</voice_recorder_key>
  <recording_list>
    <recording_list_key>MyCustomKey</recording_list_key>
    <name>Test Recording List</name>
    <meta_data_1>xxx</meta_data_1>
    <meta_data_2>yyy</meta_data_2>
    <meta_data_3>zzz</meta_data_3>
    <access_protected>false</access_protected>
    <update_protected>false</update_protected>
    <delete_protected>false</delete_protected>
<recording_count>3</recording_count>
<max_recordings>5</max_recordings>
<date_created>2007-12-12 20:21:43 EST</date_created>
<last_updated>2007-12-12 20:21:43 EST</last_updated>
<last_accessed>2007-12-12 20:21:43 EST</last_accessed>
</recording_list>
</MyVoxapi>"""

GET_SESSION_STATUS = """<?xml version="1.0" encoding="UTF-8"?>
<MyVoxapi message="Recording session status has been retrieved"
status="success">
  <session_state>called</session_state>
  <voice_recorder_key>ZV2ZEXHJ4P</voice_recorder_key>
  <recording_list_key>36PONP0XTR</recording_list_key>
  <recording_session_key>V6GUN79S7T</recording_session_key>
</MyVoxapi>"""

SET_RECORDING = """<?xml version="1.0" encoding="UTF-8"?>
<MyVoxapi message="Recording 62B3S11LBB updated" status="success">
  <voice_recorder_key>AOAIG2UUVO</voice_recorder_key>
  <recording_list_key>WWJKFT0A5V</recording_list_key>
  <recording>
    <recording_key>62B3S11LBB</recording_key>
    <recording_state>unrecorded</recording_state>
    <name>MyRecording</name>
    <sequence>1</sequence>
    <meta_data_1>ABCDEFG</meta_data_1>
    <is_in_session>false</is_in_session>
    <play_key>HJ4SF86FE666EL9U73GE</play_key>
    <has_wav_file>false</has_wav_file>
    <has_mp3_file>false</has_mp3_file>
    <date_created>2007-12-12 22:32:59 EST</date_created>
    <last_updated>2007-12-12 22:32:59 EST</last_updated>
    <last_accessed>2007-12-12 22:32:59 EST</last_accessed>
  </recording>
</MyVoxapi>"""

SET_RECORDING_LIST = """<?xml version="1.0" encoding="UTF-8"?>
<MyVoxapi message="Recording list MyCustomKey updated"
status="success">
  <voice_recorder_key>AOAIG2UUVO</voice_recorder_key>
  <recording_list>
    <recording_list_key>MyCustomKey</recording_list_key>
    <name>Test Recording List</name>
    <meta_data_1>xxx</meta_data_1>
    <meta_data_2>yyy</meta_data_2>
    <meta_data_3>zzz</meta_data_3>
    <access_protected>false</access_protected>
    <update_protected>false</update_protected>
    <delete_protected>false</delete_protected>
    <recording_count>3</recording_count>
    <max_recordings>5</max_recordings>
    <date_created>2007-12-12 20:21:43 EST</date_created>
    <last_updated>2007-12-12 20:21:43 EST</last_updated>
    <last_accessed>2007-12-12 20:21:43 EST</last_accessed>
  </recording_list>
</MyVoxapi>"""

START_RECORDING_SESSION = """<?xml version="1.0" encoding="UTF-8"?>
<MyVoxapi message="A new recording session has been started"
status="success">
  <recording_session_key>V6GUN79S7T</recording_session_key>
  <ivr_pin>785754</ivr_pin>
  <phone_number_list>
    <phone_number_info>
      <phone_number_key>IG2UUAOAVO</phone_number_key>
      <phone_number>5125381945</phone_number>
      <display_number>512-538-1945</display_number>
      <country>US</country>
    </phone_number_info>
  </phone_number_list>
  <session_recordings>
    <recording>
      <recording_key>26069U4CAN</recording_key>
      <recording_state>unrecorded</recording_state>
      <name>Recording 1</name>
      <sequence>1</sequence>
      <is_in_session>true</is_in_session>
      <has_wav_file>false</has_wav_file>
      <has_mp3_file>false</has_mp3_file>
      <date_created>2007-12-13 01:06:47 EST</date_created>
      <last_updated>2007-12-13 01:11:26 EST</last_updated>
      <last_accessed>2007-12-13 01:06:47 EST</last_accessed>
    </recording>
    <recording>
      <recording_key>Z4JK68NSE1</recording_key>
      <recording_state>unrecorded</recording_state>
      <name>Recording 2</name>
      <sequence>2</sequence>
      <is_in_session>true</is_in_session>
      <has_wav_file>false</has_wav_file>
      <has_mp3_file>false</has_mp3_file>
      <date_created>2007-12-13 01:07:09 EST</date_created>
      <last_updated>2007-12-13 01:11:27 EST</last_updated>
      <last_accessed>2007-12-13 01:07:09 EST</last_accessed>
    </recording>
  </session_recordings>
</MyVoxapi>"""

# The common response section's failure example, with the root the command samples use.
FAILURE = """<MyVoxapi message="Unknown System Error" status="failed">
    <error_code>100</error_code>
    <error_message>Unknown System Error</error_message>
  </MyVoxapi>"""

# The common response section's own example: root `openMyVox`, status as a child element.
COMMON_FAILURE = """<openMyVox>
  <status>failed</status>
    <error_code>100</error_code>
    <error_message>Unknown System Error</error_message>
  </openMyVox>"""
