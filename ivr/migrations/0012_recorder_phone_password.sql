-- The recorder password as a caller keys it on a phone (letters as their keypad digits), hashed
-- like the password itself; NULL when the password has characters no keypad carries.
ALTER TABLE voice_recorders ADD COLUMN phone_password_hash text;
