using System;
using System.Diagnostics;
using System.Threading;

namespace WxToken
{
    // The bridge from wx_set_event_callback to the .NET event WxAccessToken.Events.
    //
    // The engine calls back on its own threads (the background refresher, or a thread inside Get/Invalidate). Both
    // Mono and CoreCLR attach such a thread to the runtime on the way in, so no [MonoPInvokeCallback] is needed (that
    // attribute matters only for Mono's full-AOT targets). Three rules keep the bridge safe:
    //  - the delegate the engine holds a pointer to is a static readonly field, so the GC can never collect it;
    //  - nothing thrown by a handler (or by the bridge) unwinds into native code: each handler runs in its own
    //    try/catch, and a failing handler does not keep the others from seeing the event;
    //  - the handler list is read without a lock, so a handler may subscribe, unsubscribe or call back into the
    //    library without deadlocking.
    //
    // The engine's callback is installed once, at the first subscription, at the engine's lowest level, and never
    // replaced: replacing it waits for calls in progress, which could deadlock with a handler that (un)subscribes or
    // sets the level. The level is filtered here instead (events are rare: a few per refresh).
    internal static unsafe class WxEvents
    {
        static readonly NativeMethods.EventFn Trampoline = OnNativeEvent;
        static readonly object Gate = new object();
        static EventHandler<WxTokenEvent> handlers;
        static volatile int minLevel = (int)WxEventLevel.Information;
        static bool installed;

        internal static void Add(EventHandler<WxTokenEvent> handler)
        {
            if (handler == null) return;
            lock (Gate)
            {
                if (!installed)
                {
                    NativeLibraryLoader.Ensure();
                    NativeCalls.SetEventCallback(Trampoline, (int)WxEventLevel.Debug);
                    AppDomain.CurrentDomain.ProcessExit += Detach;
                    AppDomain.CurrentDomain.DomainUnload += Detach;
                    installed = true;
                }
                handlers = (EventHandler<WxTokenEvent>)Delegate.Combine(handlers, handler);
            }
        }

        internal static void Remove(EventHandler<WxTokenEvent> handler)
        {
            if (handler == null) return;
            lock (Gate) handlers = (EventHandler<WxTokenEvent>)Delegate.Remove(handlers, handler);
        }

        internal static WxEventLevel MinLevel
        {
            get { return (WxEventLevel)minLevel; }
            set
            {
                if (value < WxEventLevel.Debug || value > WxEventLevel.Error) throw new ArgumentOutOfRangeException(nameof(value));
                minLevel = (int)value;
            }
        }

        // An engine thread that raised an event is attached to the runtime from then on. Mono, at exit or when the
        // domain unloads, waits for such threads (spinning, for the refresher that lives on in native code), so
        // the process never ends. Removing the callback and stopping the engine's background thread (which then
        // ends, and detaches) lets it go; a later call into the library would restart it.
        static void Detach(object sender, EventArgs e)
        {
            try
            {
                NativeCalls.SetEventCallback(null, 0);
                NativeCalls.Shutdown();
            }
            catch
            {
            }
        }

        static void OnNativeEvent(IntPtr userData, NativeMethods.NativeEvent* ev)
        {
            try
            {
                // Mono attaches a native thread that calls in as a foreground thread, and waits for foreground threads
                // at exit: the engine's refresher, which never ends, would keep the process alive forever.
                Thread current = Thread.CurrentThread;
                if (!current.IsBackground) current.IsBackground = true;
                EventHandler<WxTokenEvent> h = Volatile.Read(ref handlers);
                if (h == null || ev == null || ev->Level < minLevel) return;
                var e = new WxTokenEvent((WxEventLevel)ev->Level, Utf8.FromCString(ev->App), Utf8.FromCString(ev->Kind),
                    Utf8.FromCString(ev->Message), (WxStatus)ev->Status, ev->ErrCode);
                foreach (EventHandler<WxTokenEvent> one in h.GetInvocationList())
                {
                    try
                    {
                        one(null, e);
                    }
                    catch (Exception x)
                    {
                        HandlerFailed(x);
                    }
                }
            }
            catch
            {
                // Never unwind into the engine's thread: the runtime would abort the process.
            }
        }

        // A broken logger must not go unnoticed either, but there is nowhere safe to throw: report it to the trace
        // listeners (the debugger, or whatever the application configured).
        static void HandlerFailed(Exception x)
        {
            try { Trace.TraceError("WxToken: a WxAccessToken.Events handler threw " + x.GetType().FullName + ": " + x.Message); }
            catch { }
        }
    }
}
