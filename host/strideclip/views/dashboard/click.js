// The laptop's click: the metronome of the athlete the coach listens to, played by the browser.
// The body of a Bokeh CustomJS callback (strideclip.views.dashboard.page), run when the metronomes
// change (beat: a ColumnDataSource) or the coach picks whom to listen to (listen: a Select).
// Clicks are scheduled on the audio clock ahead of time (Web Audio; the "two clocks" pattern of
// C. Wilson, "A Tale of Two Clocks", 2013): timers alone jitter by tens of ms. The look-ahead is
// long (AHEAD_S) so a page busy drawing for a second drops no beat; a change (another athlete, a
// stop, an earlier end) takes back the beats not played yet, so it is still heard at once.
// The page is sent a metronome only when one starts or stops; the browser counts down its time.
const AHEAD_S = 2.0;
const M = window.strideclipMetronome || (window.strideclipMetronome =
    {ctx: null, who: "off", cue: null, tempo: 0, next: 0, end: 0, timer: null, tick: null, clicks: [], ahead: []});
const takeBack = (from_s) => {  // silence the beats scheduled at or after from_s (they leave the log)
    const gone = M.ahead.filter((b) => b.t >= from_s);  // and give the first one's time, or null
    for (const b of gone) b.gain.disconnect();
    M.ahead = M.ahead.filter((b) => b.t < from_s);
    M.clicks = M.clicks.filter((c) => c.t < from_s);
    return gone.length ? gone[0].t : null;
};
const who = listen.value;
if (who !== "off") {
    if (!M.ctx) M.ctx = new AudioContext();  // the choice in the page is the gesture browsers want
    if (M.ctx.state === "suspended") M.ctx.resume();
}
const d = beat.data, k = d.athlete.indexOf(who);
const now = M.ctx ? M.ctx.currentTime : 0;
if (!M.ctx || k < 0 || d.tempo_spm[k] <= 0) {
    if (M.ctx) takeBack(now);
    M.who = who; M.cue = null; M.tempo = 0;
    return;
}
if (M.who !== who || M.cue !== d.cue_t_s[k] || M.tempo !== d.tempo_spm[k]) {  // another metronome: from now
    takeBack(now);
    M.who = who; M.cue = d.cue_t_s[k]; M.tempo = d.tempo_spm[k]; M.next = now + 0.05;
}
M.end = now + d.remaining_s[k];
const cut = takeBack(M.end);  // an earlier end: the beat grid goes on from the first beat taken back
if (cut !== null) M.next = cut;
if (!M.tick) M.tick = () => {  // the beats up to AHEAD_S from now
    const now_s = M.ctx.currentTime;
    M.ahead = M.ahead.filter((b) => b.t > now_s);  // played: nothing left to take back
    const late = now_s - M.next;  // a page stalled longer than AHEAD_S: skip the beats gone by
    if (M.tempo > 0 && late > 0) M.next += Math.ceil(late * M.tempo / 60) * 60 / M.tempo;
    while (M.tempo > 0 && M.next < M.end && M.next < now_s + AHEAD_S) {
        const t = M.next, osc = M.ctx.createOscillator(), gain = M.ctx.createGain();
        osc.frequency.value = 1500;
        gain.gain.setValueAtTime(0.6, t);
        gain.gain.exponentialRampToValueAtTime(0.001, t + 0.03);
        osc.connect(gain);
        gain.connect(M.ctx.destination);
        osc.start(t);
        osc.stop(t + 0.04);
        M.ahead.push({t: t, gain: gain});
        M.clicks.push({who: M.who, tempo: M.tempo, t: t});
        if (M.clicks.length > 500) M.clicks.shift();
        M.next += 60 / M.tempo;
    }
};
if (!M.timer) M.timer = setInterval(() => M.tick(), 100);
M.tick();  // at once: the first beat is 50 ms away

