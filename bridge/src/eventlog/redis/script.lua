-- Appends one batch of events to the cluster log, in order (eventlog/redis/append.rs).
--
-- KEYS[1]  the stream (<prefix>:log)
-- KEYS[2]  the log's epoch (<prefix>:epoch): made here when missing
-- KEYS[3]  the appender's last batch number (<prefix>:appender:<node>:<nonce>): a
--          retried batch (its answer was lost) is not appended twice
-- ARGV[1]  an epoch to use if the log has none
-- ARGV[2]  MAXLEN ~ (history.size)
-- ARGV[3]  MINID ~ (now - history.max_age, as an entry id)
-- ARGV[4]  the prefix of publisher id keys (<prefix>:id:)
-- ARGV[5]  how long a publisher id is remembered, ms (history.max_age)
-- ARGV[6]  how long the appender's batch number is kept, ms
-- ARGV[7]  this batch's number (one appender's batches are numbered 1, 2, 3, …)
-- ARGV[8]  after the appender reconnected: the newest entry id its node appended or
--          read ('' when there is nothing to check); a log that no longer has it,
--          and holds an older entry or none, lost entries (an asynchronous failover)
--          and gets a new epoch
-- ARGV[9]  the epoch of that entry: checked only when it is still the log's
-- then three values per event: publisher id ('' when none), topic, data
--
-- Returns {appended, duplicates, last entry id appended or '', 1 when the log was
-- found to have lost entries else 0, the epoch}, or {-1, 0, '', 0, ''} when this
-- batch was appended before.
local batch = tonumber(ARGV[7])
if batch <= tonumber(redis.call('GET', KEYS[3]) or '0') then
  return {-1, 0, '', 0, ''}
end

-- Whether entry id a comes before entry id b ("ms-seq", numbers below 2^53).
local function before(a, b)
  local a_ms, a_seq = string.match(a, '^(%d+)-(%d+)$')
  local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
  a_ms, a_seq, b_ms, b_seq = tonumber(a_ms), tonumber(a_seq), tonumber(b_ms), tonumber(b_seq)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end

local epoch = redis.call('GET', KEYS[2])
local lost = 0
if epoch and ARGV[8] ~= '' and epoch == ARGV[9] then
  if #redis.call('XRANGE', KEYS[1], ARGV[8], ARGV[8]) == 0 then
    local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
    if #first == 0 or before(first[1][1], ARGV[8]) then
      epoch = nil
      lost = 1
    end
  end
end
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch)
end
local appended, duplicates, last_id = 0, 0, ''
for i = 10, #ARGV, 3 do
  local publisher_id = ARGV[i]
  if publisher_id == '' then
    last_id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
      'e', epoch, 't', ARGV[i + 1], 'd', ARGV[i + 2])
    appended = appended + 1
  else
    local key = ARGV[4] .. publisher_id
    if redis.call('EXISTS', key) == 1 then
      duplicates = duplicates + 1
    else
      last_id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
        'e', epoch, 'i', publisher_id, 't', ARGV[i + 1], 'd', ARGV[i + 2])
      redis.call('SET', key, last_id, 'PX', ARGV[5])
      appended = appended + 1
    end
  end
end
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[3])
-- Last: a batch that failed half-way is appended again in full (its events with a
-- publisher id are not), rather than losing its second half.
redis.call('SET', KEYS[3], batch, 'PX', ARGV[6])
return {appended, duplicates, last_id, lost, epoch}
