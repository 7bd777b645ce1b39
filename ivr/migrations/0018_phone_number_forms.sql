-- Phone numbers in E.164 (+15125550100), with every form a trunk or softphone may send as the
-- dialled extension for them (ivr/recorder/numbers.py writes both from now on).
ALTER TABLE phone_numbers ADD COLUMN dial_forms text[] NOT NULL DEFAULT '{}';

-- Numbers written before: the North American ones (10 digits, or 1 + 10) are normalised here.
-- Where two such rows are one number (5125550100 and 15125550100), the older becomes E.164
-- and the other keeps its form; `ivr number list` shows both, `ivr number remove` takes one.
WITH nanp AS (
    SELECT id, '+1' || right(number, 10) AS e164
    FROM phone_numbers
    WHERE number ~ '^(\+?1)?[2-9][0-9]{2}[2-9][0-9]{6}$'
      AND country IN ('US', 'CA', 'AG', 'AI', 'AS', 'BB', 'BM', 'BS', 'DM', 'DO', 'GD', 'GU',
                      'JM', 'KN', 'KY', 'LC', 'MP', 'MS', 'PR', 'SX', 'TC', 'TT', 'VC', 'VG',
                      'VI')
), first AS (
    SELECT DISTINCT ON (e164) id, e164 FROM nanp
    WHERE NOT EXISTS (SELECT 1 FROM phone_numbers o
                      WHERE o.number = nanp.e164 AND o.id <> nanp.id)
    ORDER BY e164, id
)
UPDATE phone_numbers n SET number = first.e164 FROM first WHERE n.id = first.id;

UPDATE phone_numbers SET dial_forms = CASE
    WHEN number ~ '^\+1[0-9]{10}$' THEN ARRAY[number, substr(number, 2), right(number, 10)]
    WHEN number LIKE '+%' THEN ARRAY[number, substr(number, 2)]
    ELSE ARRAY[number]
END;

CREATE INDEX phone_numbers_dial_forms ON phone_numbers USING gin (dial_forms);
