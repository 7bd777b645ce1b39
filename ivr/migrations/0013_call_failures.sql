-- Why a call's flow failed, for the operator and the developer (the API and the console show
-- it): a stable code and a short reason. NULL when the flow did not fail.
ALTER TABLE calls ADD COLUMN failure_code text, ADD COLUMN failure_reason text;
ALTER TABLE recording_sessions ADD COLUMN failure_code text, ADD COLUMN failure_reason text;
